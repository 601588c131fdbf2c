//! The tables beside a run's charts: its figures, how it was set up, how the client held up,
//! what failed; and a soak run's windows with its verdict.
use super::chart::{Axis, Chart, Series, Shape};
use super::page::{num, Block, Page, Table};
use super::run::Run;
use super::single::LATENCIES;
use serde_json::Value;

/// Throughput and each latency's mean and percentiles.
pub fn summary(page: &mut Page, r: &Run, p: &str) {
    let mut t = Table::new(&format!("{p}summary"), "Figures", &["", "value"]);
    let rows: [(&str, Option<f64>); 9] = [
        ("requests completed", r.f("completed")),
        ("requests failed", r.f("failed")),
        ("duration (s)", r.f("duration")),
        ("request throughput (req/s)", r.f("request_throughput")),
        ("request goodput (req/s)", r.f("request_goodput")),
        ("output throughput (tok/s)", r.f("output_throughput")),
        (
            "total token throughput (tok/s)",
            r.f("total_token_throughput"),
        ),
        ("peak output tokens/s", r.f("max_output_tokens_per_s")),
        ("most requests in flight", r.f("max_concurrent_requests")),
    ];
    for (k, v) in rows {
        if v.is_some() {
            t.row(vec![k.into(), num(v)]);
        }
    }
    page.table(t);
    let mut l = Table::new(
        &format!("{p}latencies"),
        "Latencies (ms)",
        &["", "mean", "p50", "p90", "p95", "p99", "max"],
    );
    for (m, label) in LATENCIES {
        let cells: Vec<String> = ["mean", "median", "p90", "p95", "p99", "max"]
            .iter()
            .map(|w| num(r.stat(m, w)))
            .collect();
        if cells.iter().any(|c| c != "-") {
            l.row(std::iter::once(label.to_string()).chain(cells).collect());
        }
    }
    page.table(l);
}

/// Settings, workload, prompt lengths, the client's health and every error class.
pub fn setup(page: &mut Page, r: &Run, p: &str) {
    let mut s = Table::new(&format!("{p}settings"), "Settings", &["", "value"]);
    for k in [
        "date",
        "backend",
        "model_id",
        "base_url",
        "label",
        "num_prompts",
        "request_rate",
        "burstiness",
        "max_concurrency",
    ] {
        let v = r.s(k);
        if !v.is_empty() {
            s.row(vec![k.into(), v]);
        }
    }
    if let Some(Value::Object(c)) = r.o.get("config") {
        for (k, v) in c {
            flatten(&mut s, k, v);
        }
    }
    page.table(s);
    if let Some(Value::Object(pt)) = r.o.get("prompt_tokens") {
        let mut t = Table::new(
            &format!("{p}prompt-lengths"),
            "Prompt lengths: how they were made",
            &["", "value"],
        );
        for (k, v) in pt {
            flatten(&mut t, k, v);
        }
        page.table(t);
    } else {
        let src = r.s("input_tokens_source");
        if !src.is_empty() {
            page.text(format!("Prompt lengths: {src}."));
        }
    }
    client(page, r, p);
    errors(page, r, p);
}

fn flatten(t: &mut Table, k: &str, v: &Value) {
    match v {
        Value::Object(o) => {
            for (k2, v2) in o {
                flatten(t, &format!("{k}.{k2}"), v2);
            }
        }
        Value::Null => {}
        Value::Array(a) if a.is_empty() => {}
        Value::String(s) => t.row(vec![k.into(), s.clone()]),
        v => t.row(vec![k.into(), v.to_string()]),
    }
}

fn client(page: &mut Page, r: &Run, p: &str) {
    let Some(Value::Object(c)) = r.o.get("client") else {
        return;
    };
    let bound = c.get("bound").and_then(Value::as_bool).unwrap_or(false);
    let warnings: Vec<String> = c
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let line = if bound {
        format!(
            "client-bound: the figures measure this client as much as the server. {}",
            warnings.join(" ")
        )
    } else {
        "client healthy: it kept up with the load (dispatch on time, CPU to spare).".to_string()
    };
    page.blocks.push(Block::Verdict { pass: !bound, line });
    let mut t = Table::new(
        &format!("{p}client"),
        "The client's health",
        &["", "p50", "p99", "max"],
    );
    for (k, label) in [
        ("dispatch_lag_ms", "dispatch lag (ms)"),
        ("queue_time_ms", "waiting for a slot (ms)"),
        ("time_to_headers_ms", "sent to response headers (ms)"),
        ("headers_to_first_token_ms", "headers to first token (ms)"),
    ] {
        let g = |q: &str| c.get(k).and_then(|v| v.get(q)).and_then(Value::as_f64);
        t.row(vec![
            label.into(),
            num(g("p50")),
            num(g("p99")),
            num(g("max")),
        ]);
    }
    let cpu = c.get("cpu_pct_of_one_core").and_then(Value::as_f64);
    let cores = c.get("cores").and_then(Value::as_f64);
    t.row(vec![
        "client CPU (% of one core)".into(),
        num(cpu),
        format!("of {} cores", num(cores)),
        String::new(),
    ]);
    page.table(t);
}

fn errors(page: &mut Page, r: &Run, p: &str) {
    let Some(Value::Object(by)) = r.o.get("errors_by_class") else {
        return;
    };
    let samples: Vec<&str> =
        r.o.get("error_samples")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
    let mut t = Table::new(
        &format!("{p}errors"),
        "Errors by class, with a sample message",
        &["class", "count", "sample"],
    );
    for (class, n) in by {
        let sample = samples
            .iter()
            .find(|s| s.starts_with(&format!("{class}:")))
            .copied()
            .unwrap_or("");
        t.row(vec![class.clone(), n.to_string(), sample.to_string()]);
    }
    page.table(t);
}

/// A soak run: each window's figures as charts, a table, and the verdict by rule.
pub fn soak(page: &mut Page, r: &Run, p: &str) {
    let Some(s) = r.o.get("soak") else { return };
    let windows: Vec<&Value> = s
        .get("windows")
        .and_then(Value::as_array)
        .map(|w| w.iter().collect())
        .unwrap_or_default();
    page.heading(3, "Soak: each window and the verdict");
    if let Some(v) = s.get("verdict") {
        verdict(page, v, p);
    }
    window_charts(page, &windows, p);
    window_table(page, &windows, p);
}

/// The verdict line, green or red, and each rule's outcome.
fn verdict(page: &mut Page, v: &Value, p: &str) {
    let pass = v.get("pass").and_then(Value::as_bool).unwrap_or(false);
    let failed: Vec<String> = v
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("pass").and_then(Value::as_bool) == Some(false))
        .map(|r| {
            format!(
                "{} {} (limit {})",
                str_of(r, "name"),
                str_of(r, "value"),
                str_of(r, "limit")
            )
        })
        .collect();
    let line = if pass {
        "soak PASS".to_string()
    } else {
        format!("soak FAIL: {}", failed.join("; "))
    };
    page.blocks.push(Block::Verdict { pass, line });
    let mut t = Table::new(
        &format!("{p}soak-rules"),
        "Rules",
        &["rule", "limit", "measured", "outcome", "detail"],
    );
    for rule in v
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let outcome = match rule.get("pass").and_then(Value::as_bool) {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "not measured",
        };
        t.row(vec![
            str_of(rule, "name"),
            str_of(rule, "limit"),
            str_of(rule, "value"),
            outcome.into(),
            str_of(rule, "detail"),
        ]);
    }
    page.table(t);
}

/// Each window's latency, tokens/s and the server's memory.
fn window_charts(page: &mut Page, windows: &[&Value], p: &str) {
    let col = |k: &str| -> Vec<(f64, Option<f64>)> {
        windows
            .iter()
            .filter_map(|w| {
                Some((
                    w.get("index")?.as_f64()? + 1.0,
                    w.get(k).and_then(Value::as_f64),
                ))
            })
            .collect()
    };
    let mem = |k: &str| -> Vec<(f64, Option<f64>)> {
        windows
            .iter()
            .filter_map(|w| {
                let b = w
                    .get("memory")
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_f64);
                Some((w.get("index")?.as_f64()? + 1.0, b.map(|b| b / 1048576.0)))
            })
            .collect()
    };
    let x = || Axis::new("window");
    page.chart(
        Chart::new(
            &format!("{p}soak-latency"),
            "Soak: latency per window",
            x(),
            Axis::new("ms"),
        )
        .series(Series::new("TTFT p50", 0, Shape::LinePoints).with_points(col("ttft_p50_ms")))
        .series(Series::new("TTFT p99", 1, Shape::LinePoints).with_points(col("ttft_p99_ms")))
        .series(Series::new("E2EL p99", 2, Shape::LinePoints).with_points(col("e2el_p99_ms"))),
    );
    page.chart(
        Chart::new(
            &format!("{p}soak-throughput"),
            "Soak: output tokens per second per window",
            x(),
            Axis::new("tokens/s"),
        )
        .series(
            Series::new("output tokens/s", 0, Shape::LinePoints)
                .with_points(col("output_tokens_per_s")),
        ),
    );
    page.chart(
        Chart::new(
            &format!("{p}soak-memory"),
            "Soak: the server's memory at each window's close",
            x(),
            Axis::new("MiB"),
        )
        .series(
            Series::new("RSS (process group)", 0, Shape::LinePoints).with_points(mem("rss_bytes")),
        )
        .series(Series::new("GPU memory", 1, Shape::LinePoints).with_points(mem("gpu_bytes"))),
    );
}

fn window_table(page: &mut Page, windows: &[&Value], p: &str) {
    let mut t = Table::new(
        &format!("{p}soak-windows"),
        "Windows",
        &[
            "window",
            "from (s)",
            "to (s)",
            "completed",
            "failed",
            "empty",
            "tok/s",
            "TTFT p99",
            "TPOT p99",
            "E2EL p99",
            "RSS MiB",
        ],
    );
    for w in windows {
        let g = |k: &str| w.get(k).and_then(Value::as_f64);
        let rss = w
            .get("memory")
            .and_then(|m| m.get("rss_bytes"))
            .and_then(Value::as_f64)
            .map(|b| b / 1048576.0);
        let partial = w.get("partial").and_then(Value::as_bool) == Some(true);
        t.row(vec![
            format!(
                "{}{}",
                g("index").map_or(0.0, |i| i + 1.0),
                if partial { " (partial)" } else { "" }
            ),
            num(g("start_s")),
            num(g("end_s")),
            num(g("completed")),
            num(g("failed")),
            num(g("empty_answers")),
            num(g("output_tokens_per_s")),
            num(g("ttft_p99_ms")),
            num(g("tpot_p99_ms")),
            num(g("e2el_p99_ms")),
            num(rss),
        ]);
    }
    page.table(t);
}

fn str_of(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "-".into(),
        Some(x) => x.to_string(),
    }
}
