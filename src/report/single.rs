//! One run's charts: its figures over time beside the server's, its latency distributions, a
//! timeline of a sample of requests, and a multi-turn run's turns.
use super::chart::{Axis, Chart, Series, Shape};
use super::page::Page;
use super::run::{Dist, Request, Run};

pub const LATENCIES: [(&str, &str); 4] = [
    ("ttft", "TTFT"),
    ("tpot", "TPOT"),
    ("itl", "ITL"),
    ("e2el", "E2EL"),
];

fn secs(v: &[Option<f64>]) -> Vec<(f64, Option<f64>)> {
    v.iter()
        .enumerate()
        .map(|(i, y)| (i as f64 + 1.0, *y))
        .collect()
}

/// The per-second charts; `p` prefixes each chart's id.
pub fn over_time(page: &mut Page, r: &Run, p: &str) {
    let t = || Axis::new("seconds since the run started");
    let mut lat = Chart::new(
        &format!("{p}latency-over-time"),
        "Latency over time (p50 solid colours, p99 their pairs)",
        t(),
        Axis::log("ms (log)"),
    );
    for (i, (m, label)) in [("ttft", "TTFT"), ("itl", "ITL"), ("e2el", "E2EL")]
        .iter()
        .enumerate()
    {
        for (j, q) in ["p50", "p99"].iter().enumerate() {
            if let Some(v) = r.series(&format!("{m}_{q}_ms")) {
                lat = lat.series(
                    Series::new(format!("{label} {q}"), i * 2 + j, Shape::Line)
                        .with_points(secs(&v)),
                );
            }
        }
    }
    page.chart(lat);
    let mut req = Chart::new(
        &format!("{p}requests-over-time"),
        "Requests per second: sent against the target, completed, errors",
        t(),
        Axis::new("requests/s"),
    );
    for (k, name, c) in [
        ("sent", "sent/s", 0),
        ("completed", "completed/s", 2),
        ("failed", "errors/s", 1),
    ] {
        if let Some(v) = r.series(k) {
            req = req.series(Series::new(name, c, Shape::Line).with_points(secs(&v)));
        }
    }
    if let Some(rate) = r.rate() {
        req = req.hrule(format!("target {rate} req/s"), rate, Some(6));
    }
    page.chart(req);
    if let Some(v) = r.series("output_tokens_per_s") {
        let gen = r.server("generation_tokens_per_s");
        page.chart(
            Chart::new(
                &format!("{p}tokens-over-time"),
                "Output tokens per second",
                t(),
                Axis::new("tokens/s"),
            )
            .series(Series::new("client: output tokens/s", 0, Shape::Line).with_points(secs(&v)))
            .series(Series::new("server: generation tokens/s", 1, Shape::Line).with_points(gen)),
        );
    }
    let mut conc = Chart::new(
        &format!("{p}concurrency-over-time"),
        "Concurrency: the client's requests in flight and the server's queue",
        t(),
        Axis::new("requests"),
    );
    if let Some(v) = r.series("concurrency") {
        conc = conc.series(Series::new("client: in flight", 0, Shape::Line).with_points(secs(&v)));
    }
    conc = conc
        .series(Series::new("server: running", 2, Shape::Line).with_points(r.server("running")))
        .series(Series::new("server: waiting", 1, Shape::Line).with_points(r.server("waiting")));
    page.chart(conc);
    let pct = |k: &str| -> Vec<(f64, Option<f64>)> {
        r.server(k)
            .into_iter()
            .map(|(t, v)| (t, v.map(|x| x * 100.0)))
            .collect()
    };
    page.chart(
        Chart::new(
            &format!("{p}server-over-time"),
            "The server's view: KV cache, prefix-cache hits, preemptions (vLLM /metrics)",
            t(),
            Axis::new("% (preemptions: count)"),
        )
        .series(Series::new("KV cache used %", 3, Shape::Line).with_points(pct("kv_cache_usage")))
        .series(
            Series::new("prefix-cache hits %", 2, Shape::Line)
                .with_points(pct("prefix_cache_hit_rate")),
        )
        .series(
            Series::new("preemptions (since start)", 1, Shape::Line)
                .with_points(r.server("preemptions")),
        ),
    );
}

/// A histogram and a CDF per latency, the percentiles marked.
pub fn distributions(page: &mut Page, r: &Run, p: &str) {
    for (m, label) in LATENCIES {
        let Some(d) = r.dist(m) else { continue };
        // The saved percentiles; where a file saved none (vLLM's E2EL), its own values', sorted
        // once and only then.
        let missing = ["median", "p90", "p99"]
            .iter()
            .any(|w| r.stat(m, w).is_none());
        let sorted = missing.then(|| r.values(m)).flatten().map(|mut v| {
            v.sort_by(f64::total_cmp);
            v
        });
        let pick = |w: &str, q: f64| {
            r.stat(m, w).or_else(|| {
                let v = sorted.as_ref()?;
                v.get(((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1)
                    .copied()
            })
        };
        let marks: Vec<(&str, Option<f64>)> = vec![
            ("p50", pick("median", 0.5)),
            ("p90", pick("p90", 0.9)),
            ("p99", pick("p99", 0.99)),
        ];
        let mark = |mut c: Chart| {
            for (i, (name, v)) in marks.iter().enumerate() {
                if let Some(v) = v.filter(|v| *v > 0.0) {
                    c = c.vrule(
                        format!("{name} {}", super::chart::tick(v)),
                        v,
                        Some([6, 1, 7][i]),
                    );
                }
            }
            c
        };
        let x = || Axis::log(format!("{label}, ms (log)"));
        match &d {
            Dist::Bins { bins, ratio } => {
                let mut h = Chart::new(
                    &format!("{p}hist-{m}"),
                    &format!("{label} histogram"),
                    x(),
                    Axis::new("requests"),
                );
                if m == "itl" {
                    h.y = Axis::new("gaps between chunks");
                }
                h.bar_width = *ratio;
                h = h.series(
                    Series::new(label, 0, Shape::Bars).with_points(
                        bins.iter()
                            .filter(|b| b.1 > 0)
                            .map(|b| (b.0, Some(b.1 as f64)))
                            .collect(),
                    ),
                );
                page.chart(mark(h));
                let cdf = Chart::new(
                    &format!("{p}cdf-{m}"),
                    &format!("{label} CDF"),
                    x(),
                    Axis::new("% of requests at or below"),
                )
                .series(Series::new(label, 0, Shape::Line).with_points(d.cdf()));
                page.chart(mark(cdf));
            }
            Dist::Ladder(_) => {
                let cdf = Chart::new(&format!("{p}cdf-{m}"), &format!("{label} CDF (from the saved percentiles only)"), x(), Axis::new("% of requests at or below"))
                    .series(Series::new(label, 0, Shape::LinePoints).with_points(d.cdf()))
                    .note("This file saved percentiles only: the CDF joins them; save per-request arrays (--save-detailed) for the histogram.");
                page.chart(mark(cdf));
            }
        }
    }
}

/// The CDF points of a latency, in percent, for overlays.
pub fn cdf_points(r: &Run, m: &str) -> Vec<(f64, Option<f64>)> {
    r.dist(m).map(|d| d.cdf()).unwrap_or_default()
}

/// How many requests the timeline shows: enough to see the pattern, few enough to read.
const TIMELINE_ROWS: usize = 60;

/// A sample of requests as bars: waiting for a slot, to the first token, decoding.
pub fn timeline(page: &mut Page, r: &Run, p: &str) {
    let Some(reqs) = r.requests() else {
        page.text(
            "No per-request timeline: this run did not save per-request records (--save-detailed).",
        );
        return;
    };
    let sample = sample(&reqs, TIMELINE_ROWS);
    if sample.is_empty() {
        return;
    }
    let mut queue = Series::new("waiting for a slot", 6, Shape::Spans);
    let mut first = Series::new("to first token (TTFT)", 1, Shape::Spans);
    let mut decode = Series::new("decode", 0, Shape::Spans);
    let mut failed = Series::new("failed", 3, Shape::Spans);
    for (row, q) in sample.iter().enumerate() {
        let row = row as f64;
        let s = q.start;
        if let Some(w) = q.queue.filter(|w| *w > 0.0) {
            queue.points.push((s - w, Some(s)));
            queue.rows.push(row);
        }
        let end = q.e2el.map(|e| s + e);
        if q.failed {
            failed.points.push((s, Some(end.unwrap_or(s))));
            failed.rows.push(row);
            continue;
        }
        if let Some(t) = q.ttft {
            first.points.push((s, Some(s + t)));
            first.rows.push(row);
            if let Some(e) = end {
                decode.points.push((s + t, Some(e)));
                decode.rows.push(row);
            }
        }
    }
    let mut c = Chart::new(
        &format!("{p}timeline"),
        &format!(
            "Per-request timeline ({} of {} requests: evenly spread, and the slowest)",
            sample.len(),
            reqs.len()
        ),
        Axis::new("seconds since the run started"),
        Axis::new("request"),
    );
    for s in [queue, first, decode, failed] {
        c = c.series(s);
    }
    page.chart(c);
}

/// Up to `n` requests: the slowest tenth of them by end-to-end latency, the rest evenly spread;
/// in the order they started.
fn sample(reqs: &[Request], n: usize) -> Vec<Request> {
    if reqs.len() <= n {
        let mut v = reqs.to_vec();
        v.sort_by(|a, b| a.start.total_cmp(&b.start));
        return v;
    }
    let mut slow: Vec<&Request> = reqs.iter().collect();
    slow.sort_by(|a, b| b.e2el.unwrap_or(0.0).total_cmp(&a.e2el.unwrap_or(0.0)));
    let mut keep: std::collections::BTreeSet<usize> =
        slow.iter().take(n / 10).map(|r| r.index).collect();
    let step = reqs.len() as f64 / (n - keep.len()) as f64;
    let mut i = 0.0;
    while keep.len() < n && (i as usize) < reqs.len() {
        keep.insert(reqs[i as usize].index);
        i += step;
    }
    let mut v: Vec<Request> = reqs
        .iter()
        .filter(|r| keep.contains(&r.index))
        .copied()
        .collect();
    v.sort_by(|a, b| a.start.total_cmp(&b.start));
    v
}

/// A multi-turn run: TTFT and the prompt's size by turn.
pub fn turns(page: &mut Page, r: &Run, p: &str) {
    let Some(turns) = r.o.get("per_turn").and_then(serde_json::Value::as_array) else {
        return;
    };
    let col = |k: &str| -> Vec<(f64, Option<f64>)> {
        turns
            .iter()
            .filter_map(|t| {
                Some((
                    t.get("turn")?.as_f64()?,
                    t.get(k).and_then(serde_json::Value::as_f64),
                ))
            })
            .collect()
    };
    let x = || Axis::new("turn");
    page.chart(
        Chart::new(
            &format!("{p}turn-ttft"),
            "TTFT by turn",
            x(),
            Axis::new("ms"),
        )
        .series(Series::new("TTFT p50", 0, Shape::LinePoints).with_points(col("ttft_p50_ms")))
        .series(Series::new("TTFT p99", 1, Shape::LinePoints).with_points(col("ttft_p99_ms"))),
    );
    page.chart(
        Chart::new(
            &format!("{p}turn-prompt"),
            "Prompt size by turn (the history grows)",
            x(),
            Axis::new("prompt tokens (mean)"),
        )
        .series(
            Series::new("prompt tokens", 2, Shape::LinePoints)
                .with_points(col("mean_prompt_tokens")),
        ),
    );
}
