//! Results for people: vLLM's result block (with our client section), CSV, and two runs side
//! by side with ratios.
use super::recorder::Stats;
use super::result::{BenchResult, METRICS};
use super::server_metrics::ServerMetrics;
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
    let _ = writeln!(o, "{:=^W$}", " Serving Benchmark Result ");
    line(
        &mut o,
        "Route:",
        format!("{} ({}, {})", r.label, r.backend, r.base_url),
    );
    line(&mut o, "Successful requests:", r.completed.to_string());
    line(&mut o, "Failed requests:", r.failed.to_string());
    if let Some(c) = r.max_concurrency {
        line(&mut o, "Maximum request concurrency:", c.to_string());
    }
    line(
        &mut o,
        "Request rate configured (RPS):",
        r.request_rate.map_or("inf".into(), |x| format!("{x:.2}")),
    );
    if let Some(a) = r.achieved_request_rate {
        line(&mut o, "Request rate achieved (RPS):", format!("{a:.2}"));
    }
    line(
        &mut o,
        "Benchmark duration (s):",
        format!("{:.2}", r.duration),
    );
    line(
        &mut o,
        "Total input tokens:",
        r.total_input_tokens.to_string(),
    );
    line(
        &mut o,
        "Total generated tokens:",
        r.total_output_tokens.to_string(),
    );
    line(
        &mut o,
        "Request throughput (req/s):",
        format!("{:.2}", r.request_throughput),
    );
    if let Some(g) = r.request_goodput {
        line(&mut o, "Request goodput (req/s):", format!("{g:.2}"));
    }
    line(
        &mut o,
        "Output token throughput (tok/s):",
        format!("{:.2}", r.output_throughput),
    );
    line(
        &mut o,
        "Peak output token throughput (tok/s):",
        format!("{:.2}", r.max_output_tokens_per_s),
    );
    line(
        &mut o,
        "Peak concurrent requests:",
        r.max_concurrent_requests.to_string(),
    );
    line(
        &mut o,
        "Total token throughput (tok/s):",
        format!("{:.2}", r.total_token_throughput),
    );
    for m in METRICS {
        title(&mut o, metric_title(m));
        let s = r.stats(m);
        let up = m.to_uppercase();
        line(
            &mut o,
            &format!("Mean {up} (ms):"),
            format!("{:.2}", s.mean),
        );
        line(
            &mut o,
            &format!("Median {up} (ms):"),
            format!("{:.2}", s.median),
        );
        line(&mut o, &format!("P90 {up} (ms):"), format!("{:.2}", s.p90));
        line(&mut o, &format!("P95 {up} (ms):"), format!("{:.2}", s.p95));
        line(&mut o, &format!("P99 {up} (ms):"), format!("{:.2}", s.p99));
        line(&mut o, &format!("Max {up} (ms):"), format!("{:.2}", s.max));
    }
    title(&mut o, "Client");
    let c = &r.client;
    line(
        &mut o,
        "Dispatch lag p50 / p99 / max (ms):",
        format!(
            "{:.2} / {:.2} / {:.2}",
            c.dispatch_lag.median, c.dispatch_lag.p99, c.dispatch_lag.max
        ),
    );
    if c.queue_time.count > 0 {
        line(
            &mut o,
            "Queued for a slot p50 / p99 (ms):",
            format!("{:.2} / {:.2}", c.queue_time.median, c.queue_time.p99),
        );
    }
    line(
        &mut o,
        "Client CPU (% of one core):",
        format!("{:.1} ({} cores)", c.cpu_pct, c.cores),
    );
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
            &mut o,
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
        &mut o,
        "Token counts from:",
        format!(
            "output: {}, input: {}",
            r.output_tokens_source, r.input_tokens_source
        ),
    );
    if let Some(m) = &r.server_metrics {
        server_section(&mut o, r, m);
    }
    if !r.per_turn.is_empty() {
        title(&mut o, "Per turn");
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
        line(&mut o, "Errors by class:", e.join(", "));
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
    let _ = writeln!(o, "{}", "=".repeat(W));
    o
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
    // `None` for a figure one side does not have (a server without /metrics).
    let put = |o: &mut String,
               name: &str,
               x: Option<f64>,
               y: Option<f64>,
               higher_better: Option<bool>| {
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
    };
    let both = |name: &str, x: f64, y: f64, higher_better: bool| {
        (name.to_string(), Some(x), Some(y), Some(higher_better))
    };
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
    for (name, x, y, h) in rows {
        put(&mut o, &name, x, y, h);
    }
    let (sa, sb) = (a.server_metrics.as_ref(), b.server_metrics.as_ref());
    if sa.is_none() && sb.is_none() {
        return o;
    }
    let _ = writeln!(o, "{:-^32}", " Server (vLLM /metrics) ");
    type Get = fn(&ServerMetrics) -> Option<f64>;
    let server: [(&str, Get, Option<bool>); 9] = [
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
    for (name, get, h) in server {
        put(&mut o, name, sa.and_then(get), sb.and_then(get), h);
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
