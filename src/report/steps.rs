//! A sweep's or a search's steps against each other: latency against achieved throughput with
//! the SLO lines and the knee, goodput against load, the Pareto curve of tokens/s per user
//! against tokens/s per GPU, and each step's status counts.
use super::chart::{tick, Axis, Chart, Series, Shape};
use super::page::{num, Page, Table};
use super::run::Run;
use serde_json::Value;

/// A latency limit drawn across its chart: `p99_ttft_ms <= 200`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub metric: String,
    pub max: f64,
}

/// What the steps were searched or swept for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    pub limits: Vec<Limit>,
    /// The step that is the knee, and why it is.
    pub knee: Option<(usize, String)>,
    /// GPUs serving the route, for tokens/s per GPU.
    pub gpus: f64,
}

/// The offered load of a step: its concurrency, else its rate.
pub fn load(r: &Run) -> (f64, &'static str) {
    if let Some(c) = r.at("/config/load/concurrency").and_then(Value::as_f64) {
        return (c, "concurrency");
    }
    match (r.rate(), r.f("max_concurrency")) {
        (Some(rate), _) => (rate, "offered rate, req/s"),
        (None, Some(c)) => (c, "concurrency"),
        (None, None) => (
            r.f("max_concurrent_requests").unwrap_or(0.0),
            "most requests in flight",
        ),
    }
}

/// The knee of a sweep with no SLO: the step of greatest power (throughput over p99 E2EL),
/// Kleinrock's operating point, where more load stops buying throughput and starts buying delay.
pub fn power_knee(runs: &[Run]) -> Option<(usize, String)> {
    runs.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let e = r.stat("e2el", "p99").filter(|e| *e > 0.0)?;
            Some((i, r.f("request_throughput")? / e))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| {
            (
                i,
                "knee: most throughput per unit of p99 latency".to_string(),
            )
        })
}

pub fn charts(page: &mut Page, runs: &[Run], frame: &Frame, p: &str) {
    let thr: Vec<f64> = runs
        .iter()
        .map(|r| r.f("request_throughput").unwrap_or(0.0))
        .collect();
    for (m, label) in [("ttft", "TTFT"), ("tpot", "TPOT"), ("e2el", "E2EL")] {
        let col = |w: &str| {
            thr.iter()
                .zip(runs)
                .map(|(x, r)| (*x, r.stat(m, w)))
                .collect::<Vec<_>>()
        };
        let mut c = Chart::new(
            &format!("{p}{m}-vs-throughput"),
            &format!("{label} against achieved throughput"),
            Axis::new("achieved throughput, requests/s"),
            Axis::new(format!("{label}, ms")),
        )
        .series(
            Series::new(format!("{label} p50"), 0, Shape::LinePoints).with_points(col("median")),
        )
        .series(Series::new(format!("{label} p99"), 1, Shape::LinePoints).with_points(col("p99")));
        for l in frame
            .limits
            .iter()
            .filter(|l| l.metric.contains(&format!("_{m}_")))
        {
            c = c.hrule(format!("SLO {} <= {}", l.metric, tick(l.max)), l.max, None);
        }
        if let Some((i, why)) = &frame.knee {
            if let Some(y) = runs[*i].stat(m, "p99") {
                c.marks.push((
                    thr[*i],
                    y,
                    format!(
                        "{} ({})",
                        runs[*i].name,
                        why.split(':').next().unwrap_or("knee")
                    ),
                ));
            }
        }
        page.chart(c);
    }
    let (_, load_label) = load(&runs[0]);
    let loads: Vec<f64> = runs.iter().map(|r| load(r).0).collect();
    let pick = |k: &str| {
        loads
            .iter()
            .zip(runs)
            .map(|(x, r)| (*x, r.f(k)))
            .collect::<Vec<_>>()
    };
    let mut g = Chart::new(
        &format!("{p}goodput-vs-load"),
        "Goodput and throughput against load",
        Axis::new(load_label),
        Axis::new("requests/s"),
    )
    .series(Series::new("throughput", 0, Shape::LinePoints).with_points(pick("request_throughput")))
    .series(
        Series::new("goodput (requests within the SLO)", 2, Shape::LinePoints)
            .with_points(pick("request_goodput")),
    );
    if runs.iter().all(|r| r.f("request_goodput").is_none()) {
        g = g.note("No goodput: the run set no per-request SLO (--goodput ttft:MS,tpot:MS).");
    }
    page.chart(g);
    pareto(page, runs, frame.gpus, p);
    page.chart(
        Chart::new(
            &format!("{p}status-per-step"),
            "Requests per step: completed and failed",
            Axis::new(load_label),
            Axis::new("requests"),
        )
        .series(Series::new("completed", 2, Shape::LinePoints).with_points(pick("completed")))
        .series(Series::new("failed", 1, Shape::LinePoints).with_points(pick("failed"))),
    );
    table(page, runs, frame, p);
}

/// Output tokens/s per user against output tokens/s per GPU: every step a point, the frontier
/// a line (no other step is better on both).
pub fn pareto_points(runs: &[Run], gpus: f64) -> Vec<(f64, Option<f64>)> {
    runs.iter()
        .filter_map(|r| {
            let out = r.f("output_throughput")?;
            let users = r.concurrency()?;
            Some((out / users, Some(out / gpus.max(1.0))))
        })
        .collect()
}

pub fn frontier(points: &[(f64, Option<f64>)]) -> Vec<(f64, Option<f64>)> {
    let mut f: Vec<(f64, Option<f64>)> = points
        .iter()
        .filter(|(x, y)| {
            !points.iter().any(|(x2, y2)| {
                let (y, y2) = (y.unwrap_or(0.0), y2.unwrap_or(0.0));
                (*x2 > *x && y2 >= y) || (*x2 >= *x && y2 > y)
            })
        })
        .copied()
        .collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}

fn pareto(page: &mut Page, runs: &[Run], gpus: f64, p: &str) {
    let pts = pareto_points(runs, gpus);
    let front = frontier(&pts);
    page.chart(
        Chart::new(
            &format!("{p}pareto"),
            &format!(
                "Pareto: output tokens/s per user against output tokens/s per GPU ({} GPU{})",
                tick(gpus),
                if gpus == 1.0 { "" } else { "s" }
            ),
            Axis::new("output tokens/s per user (output throughput / concurrency)"),
            Axis::new("output tokens/s per GPU"),
        )
        .series(Series::new("steps", 6, Shape::Points).with_points(pts))
        .series(Series::new("frontier", 0, Shape::LinePoints).with_points(front)),
    );
}

fn table(page: &mut Page, runs: &[Run], frame: &Frame, p: &str) {
    let mut t = Table::new(
        &format!("{p}steps"),
        "Steps",
        &[
            "step",
            "completed",
            "failed",
            "req/s",
            "goodput",
            "out tok/s",
            "TTFT p50",
            "TTFT p99",
            "TPOT p99",
            "E2EL p99",
            "",
        ],
    );
    for (i, r) in runs.iter().enumerate() {
        let knee = match &frame.knee {
            Some((k, why)) if *k == i => why.clone(),
            _ => String::new(),
        };
        t.row(vec![
            r.name.clone(),
            num(r.f("completed")),
            num(r.f("failed")),
            num(r.f("request_throughput")),
            num(r.f("request_goodput")),
            num(r.f("output_throughput")),
            num(r.stat("ttft", "median")),
            num(r.stat("ttft", "p99")),
            num(r.stat("tpot", "p99")),
            num(r.stat("e2el", "p99")),
            knee,
        ]);
    }
    page.table(t);
}
