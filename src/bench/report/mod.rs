//! Results for people: vLLM's result block (with our client section and the server's view),
//! sweep tables; CSV in `csv`, two runs side by side in `compare`.
mod compare;
mod csv;

use super::result::{BenchResult, METRICS};
use super::server_metrics::ServerMetrics;
pub use compare::compare;
pub use csv::csv;
use std::fmt::Write;

const W: usize = 50;

fn line(out: &mut String, k: &str, v: String) {
    let _ = writeln!(out, "{k:<40} {v}");
}

fn title(out: &mut String, t: &str) {
    let _ = writeln!(out, "{:-^W$}", t);
}

fn metric_title(m: &str) -> &'static str {
    match m {
        "ttft" => "Time to First Token",
        "tpot" => "Time per Output Token (excl. 1st token)",
        "itl" => "Inter-token Latency",
        _ => "End-to-end Latency",
    }
}

/// The block `vllm bench serve` prints, with every percentile and our client section.
pub fn summary(r: &BenchResult) -> String {
    let mut o = String::new();
    totals(&mut o, r);
    latencies(&mut o, r);
    client_section(&mut o, r);
    prompts_section(&mut o, r);
    server_and_errors(&mut o, r);
    let _ = writeln!(o, "{}", "=".repeat(W));
    o
}

/// The run's counts, rates, duration and token totals.
fn totals(o: &mut String, r: &BenchResult) {
    let _ = writeln!(o, "{:=^W$}", " Serving Benchmark Result ");
    line(
        o,
        "Route:",
        format!("{} ({}, {})", r.label, r.backend, r.base_url),
    );
    line(o, "Successful requests:", r.completed.to_string());
    line(o, "Failed requests:", r.failed.to_string());
    if let Some(c) = r.max_concurrency {
        line(o, "Maximum request concurrency:", c.to_string());
    }
    line(
        o,
        "Request rate configured (RPS):",
        r.request_rate.map_or("inf".into(), |x| format!("{x:.2}")),
    );
    if let Some(a) = r.achieved_request_rate {
        line(o, "Request rate achieved (RPS):", format!("{a:.2}"));
    }
    let f2 = |x: f64| format!("{x:.2}");
    let rows = [
        ("Benchmark duration (s):", Some(f2(r.duration))),
        (
            "Total input tokens:",
            Some(r.total_input_tokens.to_string()),
        ),
        (
            "Total generated tokens:",
            Some(r.total_output_tokens.to_string()),
        ),
        (
            "Request throughput (req/s):",
            Some(f2(r.request_throughput)),
        ),
        ("Request goodput (req/s):", r.request_goodput.map(f2)),
        (
            "Output token throughput (tok/s):",
            Some(f2(r.output_throughput)),
        ),
        (
            "Peak output token throughput (tok/s):",
            Some(f2(r.max_output_tokens_per_s)),
        ),
        (
            "Peak concurrent requests:",
            Some(r.max_concurrent_requests.to_string()),
        ),
        (
            "Total token throughput (tok/s):",
            Some(f2(r.total_token_throughput)),
        ),
    ];
    for (k, v) in rows {
        if let Some(v) = v {
            line(o, k, v);
        }
    }
}

/// TTFT, TPOT, ITL and E2EL: mean, median and every percentile.
fn latencies(o: &mut String, r: &BenchResult) {
    for m in METRICS {
        title(o, metric_title(m));
        let s = r.stats(m);
        let up = m.to_uppercase();
        line(o, &format!("Mean {up} (ms):"), format!("{:.2}", s.mean));
        line(o, &format!("Median {up} (ms):"), format!("{:.2}", s.median));
        line(o, &format!("P90 {up} (ms):"), format!("{:.2}", s.p90));
        line(o, &format!("P95 {up} (ms):"), format!("{:.2}", s.p95));
        line(o, &format!("P99 {up} (ms):"), format!("{:.2}", s.p99));
        line(o, &format!("Max {up} (ms):"), format!("{:.2}", s.max));
    }
    title(o, "Client");
}

/// The client's own health: time to headers, dispatch lag, queueing, CPU.
fn client_section(o: &mut String, r: &BenchResult) {
    let c = &r.client;
    line(
        o,
        "Dispatch lag p50 / p99 / max (ms):",
        format!(
            "{:.2} / {:.2} / {:.2}",
            c.dispatch_lag.median, c.dispatch_lag.p99, c.dispatch_lag.max
        ),
    );
    if c.queue_time.count > 0 {
        line(
            o,
            "Queued for a slot p50 / p99 (ms):",
            format!("{:.2} / {:.2}", c.queue_time.median, c.queue_time.p99),
        );
    }
    line(
        o,
        "Client CPU (% of one core):",
        format!("{:.1} ({} cores)", c.cpu_pct, c.cores),
    );
}

/// How the prompts' token counts were made, and what was asked and sent.
fn prompts_section(o: &mut String, r: &BenchResult) {
    if let Some(p) = &r.prompt_tokens {
        let per = |t: u64| {
            if r.completed > 0 {
                format!("{:.1}", t as f64 / r.completed as f64)
            } else {
                "-".into()
            }
        };
        let how = match p.method {
            crate::bench::tokenize::Method::ServerTokenize
            | crate::bench::tokenize::Method::TokenizerFile => "exact",
            _ => "estimated",
        };
        line(
            o,
            "Prompt tokens asked / sent:",
            format!(
                "{} / {} per request ({how}, {}{})",
                per(p.asked_total),
                per(p.sent_total),
                p.method.as_str(),
                p.template_overhead
                    .map(|t| format!("; the chat template adds {t}"))
                    .unwrap_or_default()
            ),
        );
    }
    line(
        o,
        "Token counts from:",
        format!(
            "output: {}, input: {}",
            r.output_tokens_source, r.input_tokens_source
        ),
    );
}

/// The server's own figures, per turn, errors, and a client-bound warning.
fn server_and_errors(o: &mut String, r: &BenchResult) {
    let c = &r.client;
    if let Some(m) = &r.server_metrics {
        server_section(o, r, m);
    }
    if !r.per_turn.is_empty() {
        title(o, "Per turn");
        let _ = writeln!(
            o,
            "{:>5} {:>9} {:>7} {:>14} {:>14} {:>14}",
            "TURN", "COMPLETED", "FAILED", "PROMPT TOKENS", "TTFT p50 ms", "TTFT p99 ms"
        );
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
        for t in &r.per_turn {
            let _ = writeln!(
                o,
                "{:>5} {:>9} {:>7} {:>14} {:>14} {:>14}",
                t.turn,
                t.completed,
                t.failed,
                f(t.mean_prompt_tokens),
                f(t.ttft_p50_ms),
                f(t.ttft_p99_ms)
            );
        }
    }
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        line(o, "Errors by class:", e.join(", "));
        for s in r.error_samples.iter().take(5) {
            let _ = writeln!(o, "  {}", crate::format::clip(s, 120));
        }
    }
    if c.bound {
        let _ = writeln!(
            o,
            "WARNING: client-bound run; these numbers are the client's limit, not the server's:"
        );
        for w in &c.warnings {
            let _ = writeln!(o, "  - {w}");
        }
    }
}

/// One line per step for a sweep: the curve at a glance.
pub fn sweep_table(steps: &[BenchResult]) -> String {
    let mut o = format!(
        "{:>6} {:>8} {:>6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
        "conc",
        "rate",
        "ok",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "E2EL p99",
        "client"
    );
    for r in steps {
        let _ = writeln!(
            o,
            "{:>6} {:>8} {:>6} {:>9.2} {:>10.1} {:>9.1} {:>9.1} {:>9.2} {:>9.1} {:>7}",
            r.max_concurrency.map_or("-".into(), |c| c.to_string()),
            r.request_rate.map_or("inf".into(), |x| format!("{x:.1}")),
            r.completed,
            r.request_throughput,
            r.output_throughput,
            r.ttft.median,
            r.ttft.p99,
            r.tpot.median,
            r.e2el.p99,
            if r.client.bound { "BOUND" } else { "ok" }
        );
    }
    o
}

/// The server's own view beside the client's: its TTFT and E2E over the run, the difference
/// (client + network), and what its queue and cache did.
fn server_section(o: &mut String, r: &BenchResult, m: &ServerMetrics) {
    title(o, "Server (vLLM /metrics)");
    if let Some(e) = &m.error {
        if m.samples.is_empty() && m.ttft_ms.is_none() {
            line(o, "Not read:", crate::format::clip(e, 80));
            return;
        }
    }
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    for (name, server, client) in [("TTFT", &m.ttft_ms, &r.ttft), ("E2E", &m.e2e_ms, &r.e2el)] {
        let Some(s) = server else { continue };
        line(
            o,
            &format!("{name} p50 / p99 server (ms, in buckets):"),
            format!("{} / {}", f(s.p50), f(s.p99)),
        );
        line(
            o,
            &format!("{name} p50 client - server (ms):"),
            format!("{} (client + network)", f(s.p50.map(|p| client.median - p))),
        );
    }
    let peak = |get| m.peak(get);
    line(
        o,
        "Peak running / waiting:",
        format!("{} / {}", f(peak(|s| s.running)), f(peak(|s| s.waiting))),
    );
    line(
        o,
        "Peak KV-cache usage (%):",
        f(peak(|s| s.kv_cache_usage).map(|k| k * 100.0)),
    );
    line(o, "Preemptions:", f(m.preemptions));
    if let Some(h) = m.prefix_cache_hit_rate {
        line(o, "Prefix-cache hit rate (%):", format!("{:.1}", h * 100.0));
    }
    line(
        o,
        "Samples:",
        format!("{} every {:.2} s", m.samples.len(), m.interval_s),
    );
}
