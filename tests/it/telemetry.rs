//! Telemetry: the Prometheus parser on vLLM's real page, rates and window percentiles, the
//! DCGM exporter page, every GPU status through a fake source, and the route prober against
//! the simulator with faults.
use crate::common;

use anorag::config;
use anorag::provider::factory;
use anorag::provider::ChatRequest;
use anorag::sim::{self, Flavor, SimConfig};
use anorag::telemetry::gpu::fake::FakeGpuSource;
use anorag::telemetry::gpu::{dcgm, GpuSource, GpuStatus};
use anorag::telemetry::prometheus::Page;
use anorag::telemetry::routes::{self, Health, ProbeCmd, ProberConfig, RouteTable};
use anorag::telemetry::sampler::{self, GpuView};
use anorag::telemetry::vllm_metrics::{self, Scrape};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn vllm_metrics_page_values_are_read_exactly() {
    let text = fixture("vllm-0.32/metrics.txt");
    let page = Page::parse(&text);
    assert_eq!(page.samples.len(), 477, "every sample line of the page");
    let s = Scrape::from_page(&page, Some("qwen2_5_0_5b"), Instant::now());
    assert_eq!(s.running, Some(0.0));
    assert_eq!(s.waiting, Some(0.0));
    assert_eq!(s.kv_cache_usage, Some(0.0));
    assert_eq!(s.prompt_tokens_total, Some(1716.0));
    assert_eq!(s.generation_tokens_total, Some(2080.0));
    assert_eq!(s.preemptions_total, Some(0.0));
    assert_eq!(s.prefix_queries_total, Some(1716.0));
    assert_eq!(s.prefix_hits_total, Some(0.0));
    assert_eq!(s.requests_total, Some(66.0), "summed over finished_reason");
    assert_eq!(s.model_names, vec!["qwen2_5_0_5b".to_string()]);
    assert_eq!(s.engines, 1);
    let ttft = s.ttft.as_ref().unwrap();
    assert_eq!(ttft.count, 66.0);
    assert!((ttft.sum - 1.2391152381896973).abs() < 1e-12);
    assert_eq!(ttft.buckets.len(), 23, "22 bounds and +Inf");
    // p50: rank 33 falls in (0.01, 0.02] holding counts 1..47.
    let p50 = ttft.quantile(0.5).unwrap();
    assert!((p50 - (0.01 + 0.01 * 32.0 / 46.0)).abs() < 1e-12, "{p50}");
    let e2e = s.e2e.as_ref().unwrap();
    assert!((e2e.sum - 11.327566623687744).abs() < 1e-12);
    // A model that is not served matches nothing in particular: the whole page counts.
    let any = Scrape::from_page(&page, Some("other"), Instant::now());
    assert_eq!(any.generation_tokens_total, Some(2080.0));
}

/// The same page with the counters and histograms moved on by a known amount.
fn advanced(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("vllm:generation_tokens_total{") {
                l.replace("2080.0", "2380.0")
            } else if l.starts_with("vllm:prompt_tokens_total{") {
                l.replace("1716.0", "1816.0")
            } else if l.starts_with("vllm:request_success_total{") && l.contains("length") {
                l.replace("66.0", "76.0")
            } else if l.starts_with("vllm:time_to_first_token_seconds_") && !l.contains("_created")
            {
                // Ten more requests, all with TTFT in (0.1, 0.25].
                bump_histogram(l, 0.25, 10.0)
            } else if l.starts_with("vllm:prefix_cache_queries_total{") {
                l.replace("1716.0", "1816.0")
            } else if l.starts_with("vllm:prefix_cache_hits_total{") {
                l.replace(" 0.0", " 25.0")
            } else if l.starts_with("vllm:num_requests_waiting{") {
                l.replace(" 0.0", " 3.0")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn bump_histogram(line: &str, from_le: f64, n: f64) -> String {
    let (head, val) = line.rsplit_once(' ').unwrap();
    let v: f64 = val.parse().unwrap();
    let add = if head.contains("_count{") {
        n
    } else if head.contains("_sum{") {
        n * 0.2
    } else {
        let le = head
            .split("le=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        if le >= from_le {
            n
        } else {
            0.0
        }
    };
    format!("{head} {:?}", v + add)
}

#[test]
fn counters_become_rates_and_histograms_become_window_percentiles() {
    let text = fixture("vllm-0.32/metrics.txt");
    let t0 = Instant::now();
    let before = Scrape::parse(&text, None, t0);
    let after = Scrape::parse(&advanced(&text), None, t0 + Duration::from_secs(10));
    let m = vllm_metrics::derive(Some(&before), &after);
    assert_eq!(m.window_s, 10.0);
    assert_eq!(m.generation_tokens_per_s, Some(30.0));
    assert_eq!(m.prompt_tokens_per_s, Some(10.0));
    assert_eq!(m.requests_per_s, Some(1.0));
    assert_eq!(m.num_requests_waiting, Some(3.0));
    assert_eq!(
        m.prefix_cache_hit_rate,
        Some(0.25),
        "25 hits in 100 queried tokens"
    );
    // Only the ten new requests are in the window, all in (0.1, 0.25].
    let p50 = m.ttft_p50_ms.unwrap();
    assert!(p50 > 100.0 && p50 <= 250.0, "{p50}");
    assert!((p50 - 175.0).abs() < 1e-6, "{p50}");
    // The first scrape alone: totals and gauges, no rates.
    let first = vllm_metrics::derive(None, &before);
    assert_eq!(first.generation_tokens_total, Some(2080.0));
    assert_eq!(first.generation_tokens_per_s, None);
    assert_eq!(first.ttft_p50_ms, None);
    // A restarted server (counters went down) counts from zero, never negative.
    let restarted = vllm_metrics::derive(
        Some(&after),
        &Scrape::parse(&text, None, t0 + Duration::from_secs(20)),
    );
    assert_eq!(restarted.generation_tokens_per_s, Some(208.0));
}

#[test]
fn old_metric_names_and_several_engines_are_understood() {
    let page = "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 2\nvllm:num_requests_running{engine=\"1\",model_name=\"m\"} 3\nvllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\nvllm:gpu_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.7\nvllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} 10\nvllm:generation_tokens_total{engine=\"1\",model_name=\"m\"} 5\n";
    let s = Scrape::parse(page, Some("m"), Instant::now());
    assert_eq!(s.running, Some(5.0));
    assert_eq!(s.engines, 2);
    assert!(
        (s.kv_cache_usage.unwrap() - 0.6).abs() < 1e-12,
        "the mean fullness of the engines"
    );
    assert_eq!(s.generation_tokens_total, Some(15.0));
    let v0 = Scrape::parse(
        "vllm:num_requests_running{model_name=\"m\"} 1\n",
        Some("m"),
        Instant::now(),
    );
    assert_eq!(v0.running, Some(1.0), "V0 pages have no engine label");
    let none = Scrape::parse("python_info 1\n", None, Instant::now());
    assert!(!none.is_vllm());
}

#[test]
fn dcgm_exporter_page_becomes_devices_with_missing_fields_missing() {
    let s = dcgm::parse("gpu-node-2", &fixture("dcgm/two_gpus.txt"));
    assert_eq!(s.status, GpuStatus::Ok);
    assert_eq!(s.driver_version.as_deref(), Some("550.54.15"));
    assert_eq!(s.devices.len(), 2);
    let mib = 1u64 << 20;
    let g0 = &s.devices[0];
    assert_eq!(g0.index, 0);
    assert_eq!(g0.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(
        g0.uuid.as_deref(),
        Some("GPU-9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f")
    );
    assert_eq!(g0.memory_used_bytes, Some(12288 * mib));
    assert_eq!(g0.memory_total_bytes, Some((12288 + 69120) * mib));
    assert_eq!(g0.utilization_gpu_pct, Some(87));
    assert_eq!(g0.utilization_memory_pct, Some(43));
    assert_eq!(g0.temperature_c, Some(61));
    assert_eq!(g0.power_draw_w, Some(312.487));
    assert_eq!(g0.sm_clock_mhz, Some(1980));
    let g1 = &s.devices[1];
    assert_eq!(g1.memory_used_bytes, Some(1024 * mib));
    assert_eq!(g1.memory_total_bytes, None, "no FB_FREE, no total");
    assert_eq!(g1.utilization_gpu_pct, Some(42), "from the profiling ratio");
    assert_eq!(g1.power_draw_w, None);
    assert_eq!(g1.temperature_c, Some(38));
    let empty = dcgm::parse("x", "# nothing\n");
    assert!(matches!(empty.status, GpuStatus::Unreachable(_)));
}

/// A router of one route, `r`, on this simulator.
async fn one_route_router(s: &sim::SimHandle) -> Arc<anorag::provider::router::Router> {
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      r: {{base_url: {}, model: qwen2_5_0_5b}}\n",
        s.base_url()
    );
    let cfg = config::load_str(&yaml, "t.yaml").unwrap();
    Arc::new(factory::build(&cfg).await.unwrap())
}

#[tokio::test]
async fn a_dcgm_source_over_http_and_when_unreachable() {
    let body = fixture("dcgm/two_gpus.txt");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let b = body.clone();
            async move { b }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    let mut src = dcgm::DcgmSource::new("node2", &format!("http://{addr}/metrics"));
    let s = src.sample().await;
    assert_eq!(s.source, "node2");
    assert_eq!(s.devices.len(), 2);
    let mut gone = dcgm::DcgmSource::new(
        "node3",
        &format!("http://127.0.0.1:{}/metrics", common::free_port()),
    );
    let s = gone.sample().await;
    assert!(
        matches!(&s.status, GpuStatus::Unreachable(m) if m.contains("node3") || m.contains("127.0.0.1")),
        "{:?}",
        s.status
    );
    assert!(s.devices.is_empty());
}

#[tokio::test]
async fn every_gpu_status_and_missing_fields_pass_through_the_views() {
    let statuses = [
        GpuStatus::NoLibrary,
        GpuStatus::DriverNotLoaded,
        GpuStatus::DriverMismatch,
        GpuStatus::NoPermission,
        GpuStatus::GpuLost,
        GpuStatus::NoDevices,
        GpuStatus::Unreachable("connection refused".into()),
        GpuStatus::Error("Unknown".into()),
    ];
    let mut script: Vec<_> = statuses
        .iter()
        .map(|s| FakeGpuSource::sample(s.clone(), vec![]))
        .collect();
    script.push(FakeGpuSource::sample(
        GpuStatus::Ok,
        vec![
            FakeGpuSource::device(0, 20.0, 55, std::process::id()),
            FakeGpuSource::sparse_device(1),
        ],
    ));
    let n = script.len();
    let mut src: Box<dyn GpuSource> = Box::new(FakeGpuSource::new("fake", script));
    let mut view = GpuView::default();
    let mut rendered = Vec::new();
    let me = (String::from("me"), unsafe { libc::getpgrp() });
    for _ in 0..n {
        let samples =
            sampler::read_all(std::slice::from_mut(&mut src), std::slice::from_ref(&me)).await;
        rendered.push(anorag::cli::gpu::render(&samples));
        let json = serde_json::to_value(&samples).unwrap();
        assert!(json[0]["status"].is_string());
        view.samples = samples;
    }
    for (s, text) in statuses.iter().zip(&rendered) {
        assert!(text.contains(&s.describe()), "{text}");
    }
    let last = rendered.last().unwrap();
    assert!(
        last.contains("20.0/79.6 GiB") && last.contains("55%"),
        "{last}"
    );
    assert!(
        last.contains("(server me)"),
        "our own process group is matched: {last}"
    );
    // The sparse device shows dashes, not zeros.
    let sparse = last.lines().find(|l| l.contains("GRID")).unwrap();
    assert!(
        sparse.contains("0.5/4.0 GiB") && sparse.matches(" -").count() >= 5,
        "{sparse}"
    );
}

async fn watch_until(
    rx: &mut watch::Receiver<RouteTable>,
    limit: Duration,
    what: &str,
    f: impl Fn(&RouteTable) -> bool,
) -> RouteTable {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let t = rx.borrow_and_update();
            if f(&t) {
                return t.clone();
            }
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!(
                "{what}: not seen within {limit:?}: {:#?}",
                rx.borrow().routes
            );
        }
    }
}

#[tokio::test]
async fn the_prober_sees_down_up_down_and_records_latency() {
    let s = sim::start(SimConfig::new(Flavor::Vllm).timing(1, 1, 4))
        .await
        .unwrap();
    s.set_refusing(true);
    let router = one_route_router(&s).await;
    let (tx, mut rx) = watch::channel(RouteTable::from_router(&router));
    let probe = routes::spawn(
        router.clone(),
        ProberConfig {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            refresh: Duration::from_millis(100),
        },
        tx,
    );
    let state = |t: &RouteTable| t.routes[0].targets[0].state;
    let t = watch_until(&mut rx, Duration::from_secs(5), "down", |t| {
        state(t) == Health::Down
    })
    .await;
    let target = &t.routes[0].targets[0];
    assert!(target.last_error.as_deref().unwrap().contains("refused"));
    assert!(target.latency_ms.is_none());

    s.set_refusing(false);
    let t = watch_until(&mut rx, Duration::from_secs(5), "up", |t| {
        state(t) == Health::Up
    })
    .await;
    let target = &t.routes[0].targets[0];
    let lat = target.latency_ms.unwrap();
    assert!(lat > 0.0 && lat < 500.0, "{lat}");
    assert_eq!(target.latency_history.last(), Some(lat));
    assert!(
        target.latency_history.iter().any(|v| v.is_none()),
        "the down probes are gaps in the history"
    );
    assert_eq!(target.consecutive_failures, 0);
    let m = target.metrics.as_ref().expect("vLLM's /metrics were read");
    assert_eq!(m.num_requests_running, Some(0.0));

    // Traffic shows in vLLM's numbers; a probe on demand picks it up.
    let r = router
        .chat(
            None,
            &ChatRequest {
                max_tokens: Some(4),
                ..ChatRequest::prompt("hi")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.response.usage.unwrap().completion_tokens, 4);
    probe.send(ProbeCmd::Now(None)).await.unwrap();
    watch_until(&mut rx, Duration::from_secs(5), "tokens counted", |t| {
        t.routes[0].targets[0]
            .metrics
            .as_ref()
            .and_then(|m| m.generation_tokens_total)
            == Some(4.0)
    })
    .await;

    s.set_refusing(true);
    let t = watch_until(&mut rx, Duration::from_secs(5), "down again", |t| {
        state(t) == Health::Down && t.routes[0].targets[0].consecutive_failures >= 2
    })
    .await;
    assert!(t.routes[0].targets[0].last_error.is_some());
}

#[tokio::test]
async fn the_circuit_shown_is_the_routers_own() {
    let s = sim::start(SimConfig::new(Flavor::Vllm).timing(1, 1, 4))
        .await
        .unwrap();
    let router = one_route_router(&s).await;
    let (tx, mut rx) = watch::channel(RouteTable::from_router(&router));
    let _p = routes::spawn(
        router.clone(),
        ProberConfig {
            interval: Duration::from_secs(60),
            timeout: Duration::from_millis(500),
            refresh: Duration::from_millis(100),
        },
        tx,
    );
    s.set_refusing(true);
    let _ = router.chat(None, &ChatRequest::prompt("hi")).await;
    watch_until(&mut rx, Duration::from_secs(3), "open circuit", |t| {
        t.routes[0].targets[0].circuit.state == anorag::provider::circuit::CircuitState::Open
    })
    .await;
}

#[tokio::test]
async fn a_model_the_server_lacks_makes_the_route_degraded() {
    let s = sim::start(SimConfig::new(Flavor::Ollama).timing(1, 1, 4))
        .await
        .unwrap();
    let yaml = format!(
        "llm:\n  provider: ollama\n  ollama: {{base_url: \"{}\", model: \"llama3.2:3b\"}}\n",
        s.base_url()
    );
    let cfg = config::load_str(&yaml, "t.yaml").unwrap();
    let router = factory::build(&cfg).await.unwrap();
    let t = routes::probe_all(&router, Duration::from_secs(2)).await;
    let target = &t.routes[0].targets[0];
    assert_eq!(target.state, Health::Degraded);
    assert!(target
        .last_error
        .as_deref()
        .unwrap()
        .contains("model `llama3.2:3b` is not served here (it serves: qwen2.5:0.5b)"));
    assert!(target.metrics.is_none(), "Ollama has no /metrics");
}

#[tokio::test]
async fn the_simulators_metrics_follow_its_traffic() {
    let s = sim::start(SimConfig::new(Flavor::Vllm).timing(30, 50, 10))
        .await
        .unwrap();
    let yaml = format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      r: {{base_url: {}, model: qwen2_5_0_5b}}\n", s.base_url());
    let router = factory::build(&config::load_str(&yaml, "t.yaml").unwrap())
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(
            router
                .chat_stream(None, &ChatRequest::prompt("hi"))
                .await
                .unwrap(),
        );
    }
    let mid = Scrape::parse(&s.metrics_text(), None, Instant::now());
    assert_eq!(mid.running, Some(3.0));
    assert!(mid.kv_cache_usage.unwrap() > 0.0);
    for mut st in streams {
        use futures::StreamExt;
        while st.stream.next().await.is_some() {}
    }
    let after = Scrape::parse(&s.metrics_text(), None, Instant::now());
    assert_eq!(after.running, Some(0.0));
    assert_eq!(after.generation_tokens_total, Some(30.0));
    assert_eq!(after.requests_total, Some(3.0));
    assert_eq!(after.ttft.as_ref().unwrap().count, 3.0);
    let p50 = after.ttft.as_ref().unwrap().quantile(0.5).unwrap();
    assert!(
        p50 > 0.02 && p50 <= 0.04,
        "the 30 ms TTFT falls in the (0.02, 0.04] bucket: {p50}"
    );
}
