//! Results as CSV: one row per run, vLLM's keys as columns.
use super::super::recorder::Stats;
use super::super::result::{BenchResult, METRICS};
use std::fmt::Write;

/// The scalar figures, in a fixed column order.
fn row(r: &BenchResult) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("date".into(), r.date.clone()),
        ("label".into(), r.label.clone()),
        ("backend".into(), r.backend.clone()),
        ("model_id".into(), r.model_id.clone()),
        (
            "max_concurrency".into(),
            r.max_concurrency.map_or(String::new(), |c| c.to_string()),
        ),
        (
            "request_rate".into(),
            r.request_rate.map_or("inf".into(), |x| x.to_string()),
        ),
        (
            "achieved_request_rate".into(),
            r.achieved_request_rate
                .map_or(String::new(), |x| format!("{x:.4}")),
        ),
        ("duration".into(), format!("{:.4}", r.duration)),
        ("sent".into(), r.sent.to_string()),
        ("completed".into(), r.completed.to_string()),
        ("failed".into(), r.failed.to_string()),
        (
            "total_input_tokens".into(),
            r.total_input_tokens.to_string(),
        ),
        (
            "total_output_tokens".into(),
            r.total_output_tokens.to_string(),
        ),
        (
            "request_throughput".into(),
            format!("{:.4}", r.request_throughput),
        ),
        (
            "request_goodput".into(),
            r.request_goodput
                .map_or(String::new(), |x| format!("{x:.4}")),
        ),
        (
            "output_throughput".into(),
            format!("{:.4}", r.output_throughput),
        ),
        (
            "total_token_throughput".into(),
            format!("{:.4}", r.total_token_throughput),
        ),
        (
            "max_output_tokens_per_s".into(),
            format!("{:.4}", r.max_output_tokens_per_s),
        ),
        (
            "max_concurrent_requests".into(),
            r.max_concurrent_requests.to_string(),
        ),
    ];
    for m in METRICS {
        let s: &Stats = r.stats(m);
        for (k, x) in [
            ("mean", s.mean),
            ("median", s.median),
            ("std", s.std),
            ("p90", s.p90),
            ("p95", s.p95),
            ("p99", s.p99),
            ("max", s.max),
        ] {
            v.push((format!("{k}_{m}_ms"), format!("{x:.4}")));
        }
    }
    v.push((
        "dispatch_lag_p99_ms".into(),
        format!("{:.4}", r.client.dispatch_lag.p99),
    ));
    v.push(("client_cpu_pct".into(), format!("{:.2}", r.client.cpu_pct)));
    v.push(("client_bound".into(), r.client.bound.to_string()));
    let errs: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.push(("errors".into(), errs.join(";")));
    v
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A header and one row per result (one per sweep step).
pub fn csv(results: &[BenchResult]) -> String {
    let mut o = String::new();
    if let Some(first) = results.first() {
        let head: Vec<String> = row(first).into_iter().map(|(k, _)| k).collect();
        let _ = writeln!(o, "{}", head.join(","));
    }
    for r in results {
        let vals: Vec<String> = row(r).into_iter().map(|(_, v)| csv_field(&v)).collect();
        let _ = writeln!(o, "{}", vals.join(","));
    }
    o
}
