//! Several results on the same axes, one colour each, and the ratios against the first.
use super::chart::{Axis, Chart, Series, Shape};
use super::load::Doc;
use super::page::{num, Page, Table};
use super::run::Run;
use super::single::{cdf_points, LATENCIES};
use super::steps::{frontier, pareto_points};

/// The figures the ratio table compares: (label, read, whether more is better).
type Figure = (&'static str, fn(&Run) -> Option<f64>, bool);

const FIGURES: [Figure; 10] = [
    (
        "request throughput (req/s)",
        |r| r.f("request_throughput"),
        true,
    ),
    (
        "output throughput (tok/s)",
        |r| r.f("output_throughput"),
        true,
    ),
    ("request goodput (req/s)", |r| r.f("request_goodput"), true),
    ("failed requests", |r| r.f("failed"), false),
    ("TTFT p50 (ms)", |r| r.stat("ttft", "median"), false),
    ("TTFT p99 (ms)", |r| r.stat("ttft", "p99"), false),
    ("TPOT p50 (ms)", |r| r.stat("tpot", "median"), false),
    ("ITL p99 (ms)", |r| r.stat("itl", "p99"), false),
    ("E2EL p50 (ms)", |r| r.stat("e2el", "median"), false),
    ("E2EL p99 (ms)", |r| r.stat("e2el", "p99"), false),
];

/// Single runs side by side.
pub fn runs(page: &mut Page, runs: &[&Run]) {
    ratios(page, runs);
    let secs = |v: Vec<Option<f64>>| -> Vec<(f64, Option<f64>)> {
        v.into_iter()
            .enumerate()
            .map(|(i, y)| (i as f64 + 1.0, y))
            .collect()
    };
    let t = || Axis::new("seconds since the run started");
    let mut ttft = Chart::new(
        "cmp-ttft-over-time",
        "TTFT p99 over time",
        t(),
        Axis::log("ms (log)"),
    );
    let mut tok = Chart::new(
        "cmp-tokens-over-time",
        "Output tokens per second over time",
        t(),
        Axis::new("tokens/s"),
    );
    for (i, r) in runs.iter().enumerate() {
        if let Some(v) = r.series("ttft_p99_ms") {
            ttft = ttft.series(Series::new(r.name.clone(), i, Shape::Line).with_points(secs(v)));
        }
        if let Some(v) = r.series("output_tokens_per_s") {
            tok = tok.series(Series::new(r.name.clone(), i, Shape::Line).with_points(secs(v)));
        }
    }
    page.chart(ttft);
    page.chart(tok);
    for (m, label) in LATENCIES {
        let mut c = Chart::new(
            &format!("cmp-cdf-{m}"),
            &format!("{label} CDF, each run"),
            Axis::log(format!("{label}, ms (log)")),
            Axis::new("% of requests at or below"),
        );
        for (i, r) in runs.iter().enumerate() {
            c = c.series(Series::new(r.name.clone(), i, Shape::Line).with_points(cdf_points(r, m)));
        }
        page.chart(c);
    }
}

/// The ratio table: each figure for each run, and each run over the first.
fn ratios(page: &mut Page, runs: &[&Run]) {
    let mut head: Vec<String> = vec![String::new()];
    head.extend(runs.iter().map(|r| r.name.clone()));
    head.extend(
        runs.iter()
            .skip(1)
            .map(|r| format!("{} / {}", r.name, runs[0].name)),
    );
    let mut t = Table {
        id: "cmp-ratios".into(),
        caption: format!(
            "Side by side, and each against {} (a ratio marked + is better)",
            runs[0].name
        ),
        head,
        rows: Vec::new(),
    };
    for (label, read, more_better) in FIGURES {
        let vals: Vec<Option<f64>> = runs.iter().map(|r| read(r)).collect();
        if vals.iter().all(Option::is_none) {
            continue;
        }
        let mut row = vec![label.to_string()];
        row.extend(vals.iter().map(|v| num(*v)));
        for v in vals.iter().skip(1) {
            row.push(match (v, vals[0]) {
                (Some(v), Some(b)) if b != 0.0 => {
                    let ratio = v / b;
                    let better = if more_better {
                        ratio > 1.0
                    } else {
                        ratio < 1.0
                    };
                    format!(
                        "{:.2}x{}",
                        ratio,
                        if better && (ratio - 1.0).abs() > 0.005 {
                            " +"
                        } else {
                            ""
                        }
                    )
                }
                _ => "-".into(),
            });
        }
        t.row(row);
    }
    page.table(t);
}

/// Sweeps or searches side by side: their curves on the same axes.
pub fn curves(page: &mut Page, docs: &[&Doc], gpus: f64) {
    for (m, label) in [("ttft", "TTFT"), ("e2el", "E2EL")] {
        let mut c = Chart::new(
            &format!("cmp-{m}-vs-throughput"),
            &format!("{label} p99 against achieved throughput, each result"),
            Axis::new("achieved throughput, requests/s"),
            Axis::new(format!("{label} p99, ms")),
        );
        for (i, d) in docs.iter().enumerate() {
            let pts = d
                .runs()
                .iter()
                .map(|r| (r.f("request_throughput").unwrap_or(0.0), r.stat(m, "p99")))
                .collect();
            c = c.series(Series::new(d.name(), i, Shape::LinePoints).with_points(pts));
        }
        page.chart(c);
    }
    let mut c = Chart::new(
        "cmp-pareto",
        "Pareto frontiers: output tokens/s per user against per GPU, each result",
        Axis::new("output tokens/s per user"),
        Axis::new("output tokens/s per GPU"),
    );
    for (i, d) in docs.iter().enumerate() {
        let runs: Vec<Run> = d.runs().into_iter().cloned().collect();
        c = c.series(
            Series::new(d.name(), i, Shape::LinePoints)
                .with_points(frontier(&pareto_points(&runs, gpus))),
        );
    }
    page.chart(c);
    let mut t = Table::new(
        "cmp-peaks",
        "Each result at its highest throughput",
        &[
            "result",
            "kind",
            "steps",
            "req/s",
            "out tok/s",
            "TTFT p99 there",
            "E2EL p99 there",
        ],
    );
    for d in docs {
        let runs = d.runs();
        if let Some(best) = runs.iter().max_by(|a, b| {
            a.f("request_throughput")
                .unwrap_or(0.0)
                .total_cmp(&b.f("request_throughput").unwrap_or(0.0))
        }) {
            t.row(vec![
                d.name().to_string(),
                d.kind().to_string(),
                runs.len().to_string(),
                num(best.f("request_throughput")),
                num(best.f("output_throughput")),
                num(best.stat("ttft", "p99")),
                num(best.stat("e2el", "p99")),
            ]);
        }
    }
    page.table(t);
}
