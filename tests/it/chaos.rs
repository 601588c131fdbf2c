//! Chaos: every simulator fault against `chat` (the binary), `bench` (the engine) and the
//! console's chat session. Nothing may panic, nothing may hang past its deadline, and every
//! request of a load test ends as a success or a counted failure (completed + failed = sent).
//! The deadlines below only catch hangs; no test here measures how long anything took.
use anorag::bench::{self, BenchTarget, Load, Plan, Progress, Stop, Workload};
use anorag::config;
use anorag::provider::factory;
use anorag::session::{self, ChatEvent};
use anorag::sim::{self, Flavor, SimConfig, SimHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const FAULTS: &[&str] = &[
    "status=503,rate=0.5,retry_after=1",
    "status=500,rate=0.5",
    "status=429,rate=0.5",
    "status=400,rate=0.5",
    "reset,after=2,rate=0.5",
    "stall,after=2,ms=3000,rate=0.5",
    "stall,after=1,rate=0.3",
    "malformed,after=1,rate=0.5",
    "oversize,after=1,rate=0.5",
    "slow_headers,ms=1500,rate=0.5",
    "refuse,for_ms=400",
];

/// A hang is a test failure; this is the most any case below may take.
const HANG: Duration = Duration::from_secs(90);

async fn faulty(flavor: Flavor, spec: &str) -> SimHandle {
    let mut c = SimConfig::new(flavor).model("m").timing(5, 2, 8);
    c.faults = vec![spec.parse().unwrap()];
    sim::start(c).await.unwrap()
}

/// Short limits, so a stall or slow headers end the request instead of waiting minutes.
fn yaml(url: &str, provider: &str) -> String {
    let route = if provider == "ollama" {
        format!("  ollama: {{base_url: '{url}', model: m}}\n")
    } else {
        format!("  vllm_openai:\n    routes:\n      r: {{base_url: '{url}', model: m}}\n")
    };
    format!(
        "llm:\n  provider: {provider}\n{route}  router:\n    max_attempts: 2\n    headers_timeout_ms: 1000\n    first_token_timeout_ms: 1000\n    idle_timeout_ms: 1000\n    total_timeout_s: 8\n    max_wait_ms: 300\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_every_request_under_every_fault() {
    for spec in FAULTS {
        let s = faulty(Flavor::Vllm, spec).await;
        let cfg = config::load_str(&yaml(&s.base_url(), "vllm_openai"), "t.yaml").unwrap();
        let router = Arc::new(factory::build(&cfg).await.unwrap());
        let t = BenchTarget::from_router(router, None).unwrap();
        let plan = Plan {
            timeout_s: 4.0,
            idle_timeout_s: 1.0,
            ..Plan::new(
                Load::Closed { concurrency: 4 },
                Stop::Requests(12),
                Workload::random(8, 8),
            )
        };
        let (_tx, rx) = mpsc::channel(4);
        let (ptx, _prx) = watch::channel(Progress::default());
        let r = tokio::time::timeout(HANG, bench::runner::run(&t, &plan, rx, ptx))
            .await
            .unwrap_or_else(|_| panic!("{spec}: the load test hung"))
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(
            r.completed + r.failed,
            12,
            "{spec}: {} completed + {} failed",
            r.completed,
            r.failed
        );
        let by_class: u64 = r.errors.values().sum();
        assert_eq!(by_class, r.failed, "{spec}: every failure has a class");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consoles_chat_session_always_finishes() {
    for flavor in [Flavor::Vllm, Flavor::Ollama] {
        for spec in FAULTS {
            let s = faulty(flavor, spec).await;
            let provider = if flavor == Flavor::Ollama {
                "ollama"
            } else {
                "vllm_openai"
            };
            let cfg = config::load_str(&yaml(&s.base_url(), provider), "t.yaml").unwrap();
            let router = Arc::new(factory::build(&cfg).await.unwrap());
            let route = router.default_route().to_string();
            for id in 0..3 {
                let (tx, mut rx) = mpsc::channel(64);
                let req = anorag::provider::ChatRequest::prompt("hi");
                let _h = session::spawn_answer(router.clone(), route.clone(), req, id, tx);
                let finished = tokio::time::timeout(HANG, async {
                    while let Some(ev) = rx.recv().await {
                        if let ChatEvent::Finished { meta, .. } = ev {
                            return Some(meta);
                        }
                    }
                    None
                })
                .await
                .unwrap_or_else(|_| panic!("{flavor:?} {spec}: the answer never finished"));
                let meta = finished.unwrap_or_else(|| panic!("{flavor:?} {spec}: no Finished"));
                // An answer either has text and timings, or says what went wrong.
                assert!(
                    meta.error.is_some() || meta.ttft_ms.is_some(),
                    "{flavor:?} {spec}: {meta:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_command_exits_0_or_1_under_every_fault() {
    for spec in FAULTS {
        let s = faulty(Flavor::Vllm, spec).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("dashboard.yaml");
        std::fs::write(&cfg, yaml(&s.base_url(), "vllm_openai")).unwrap();
        for _ in 0..3 {
            let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"));
            cmd.args(["--config", cfg.to_str().unwrap(), "chat", "--json", "hello"])
                .kill_on_drop(true);
            let out = tokio::time::timeout(HANG, cmd.output())
                .await
                .unwrap_or_else(|_| panic!("{spec}: chat hung"))
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "{spec}: exit {:?}: {stderr}",
                out.status
            );
            assert!(!stderr.contains("panicked"), "{spec}: {stderr}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{spec}: not JSON ({e}): {stderr}"));
            if out.status.code() == Some(1) {
                assert!(
                    v["error"].is_object() || v["error"].is_string(),
                    "{spec}: {v}"
                );
            }
        }
    }
}
