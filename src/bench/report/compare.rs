//! Two runs side by side with ratios, the servers' own view of both under the client's.
use super::super::result::{BenchResult, METRICS};
use super::super::server_metrics::ServerMetrics;
use std::fmt::Write;

/// Two runs side by side: B / A for each figure, with which way is better; the servers' own
/// view (vLLM's `/metrics`) of both runs under the client's figures where either has one.
pub fn compare(a: &BenchResult, b: &BenchResult, a_name: &str, b_name: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<32} {:>14} {:>14} {:>9}",
        "",
        crate::format::clip(a_name, 14),
        crate::format::clip(b_name, 14),
        "B/A"
    );
    for (name, x, y, h) in client_rows(a, b) {
        put(&mut o, &name, Some(x), Some(y), Some(h));
    }
    let (sa, sb) = (a.server_metrics.as_ref(), b.server_metrics.as_ref());
    if sa.is_none() && sb.is_none() {
        return o;
    }
    let _ = writeln!(o, "{:-^32}", " Server (vLLM /metrics) ");
    for (name, get, h) in SERVER_ROWS {
        put(&mut o, name, sa.and_then(get), sb.and_then(get), h);
    }
    o
}

/// One row: both values, B/A, and whether B is better or worse (within 2%: neither).
/// `None` for a figure one side does not have (a server without /metrics).
fn put(o: &mut String, name: &str, x: Option<f64>, y: Option<f64>, higher_better: Option<bool>) {
    let ratio = match (x, y) {
        (Some(x), Some(y)) if x.abs() > 1e-12 => y / x,
        _ => f64::NAN,
    };
    let mark = match higher_better {
        _ if !ratio.is_finite() || (ratio - 1.0).abs() < 0.02 => "",
        None => "",
        Some(h) if (ratio > 1.0) == h => " better",
        Some(_) => " worse",
    };
    let r = if ratio.is_finite() {
        format!("{ratio:.2}x")
    } else {
        "-".into()
    };
    let v = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let _ = writeln!(o, "{name:<32} {:>14} {:>14} {r:>9}{mark}", v(x), v(y));
}

/// The client's figures of both runs: (name, A, B, higher is better).
fn client_rows(a: &BenchResult, b: &BenchResult) -> Vec<(String, f64, f64, bool)> {
    let both =
        |name: &str, x: f64, y: f64, higher_better: bool| (name.to_string(), x, y, higher_better);
    let mut rows = vec![
        both(
            "Successful requests",
            a.completed as f64,
            b.completed as f64,
            true,
        ),
        both("Failed requests", a.failed as f64, b.failed as f64, false),
        both(
            "Request throughput (req/s)",
            a.request_throughput,
            b.request_throughput,
            true,
        ),
        both(
            "Output throughput (tok/s)",
            a.output_throughput,
            b.output_throughput,
            true,
        ),
        both(
            "Total token throughput (tok/s)",
            a.total_token_throughput,
            b.total_token_throughput,
            true,
        ),
    ];
    if let (Some(x), Some(y)) = (a.request_goodput, b.request_goodput) {
        rows.push(both("Goodput (req/s)", x, y, true));
    }
    for m in METRICS {
        let (x, y) = (a.stats(m), b.stats(m));
        let up = m.to_uppercase();
        rows.push(both(
            &format!("Median {up} (ms)"),
            x.median,
            y.median,
            false,
        ));
        rows.push(both(&format!("P99 {up} (ms)"), x.p99, y.p99, false));
    }
    rows
}

type Get = fn(&ServerMetrics) -> Option<f64>;

/// The server's own figures (vLLM's /metrics): (name, how to read it, higher is better).
const SERVER_ROWS: [(&str, Get, Option<bool>); 9] = [
    (
        "Server median TTFT (ms)",
        |m| m.ttft_ms.as_ref()?.p50,
        Some(false),
    ),
    (
        "Server P99 TTFT (ms)",
        |m| m.ttft_ms.as_ref()?.p99,
        Some(false),
    ),
    (
        "Server median E2E (ms)",
        |m| m.e2e_ms.as_ref()?.p50,
        Some(false),
    ),
    (
        "Server P99 E2E (ms)",
        |m| m.e2e_ms.as_ref()?.p99,
        Some(false),
    ),
    ("Peak running requests", |m| m.peak(|s| s.running), None),
    (
        "Peak waiting requests",
        |m| m.peak(|s| s.waiting),
        Some(false),
    ),
    (
        "Peak KV-cache usage (%)",
        |m| m.peak(|s| s.kv_cache_usage).map(|k| k * 100.0),
        Some(false),
    ),
    ("Preemptions", |m| m.preemptions, Some(false)),
    (
        "Prefix-cache hit rate (%)",
        |m| m.prefix_cache_hit_rate.map(|h| h * 100.0),
        Some(true),
    ),
];
