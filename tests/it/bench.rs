//! The load-test engine against the simulator: exact timings, faults, open-loop rate, live
//! control, and the result's keys as vLLM writes them.
use crate::common;

use anorag::bench::recorder::{Outcome, Recorder, Slo};
use anorag::bench::result::BenchResult;
use anorag::bench::{self, BenchTarget, Control, Load, Plan, Progress, Stop, Workload};
use anorag::config;
use anorag::provider::factory;
use anorag::sim::{self, Fault, FaultKind, Flavor, SimConfig, SimHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Timing-sensitive tests run one at a time: the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn target_for(s: &SimHandle) -> BenchTarget {
    target_at(&s.base_url()).await
}

/// Arguments written as one line (none has a space: temporary paths do not).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// `dashboard.yaml` in `dir`, holding `yaml`.
fn dashboard(dir: &tempfile::TempDir, yaml: &str) -> std::path::PathBuf {
    let path = dir.path().join("dashboard.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A closed loop of `concurrency` that stops after `requests`.
fn closed(concurrency: usize, requests: u64, w: Workload) -> Plan {
    Plan::new(Load::Closed { concurrency }, Stop::Requests(requests), w)
}

/// A simulator with these timings (ms, ms, tokens) and the load-test target on it.
async fn sim_target(
    flavor: Flavor,
    ttft_ms: u64,
    itl_ms: u64,
    tokens: u32,
) -> (SimHandle, BenchTarget) {
    let s = sim::start(SimConfig::new(flavor).timing(ttft_ms, itl_ms, tokens))
        .await
        .unwrap();
    let t = target_for(&s).await;
    (s, t)
}

/// A simulator on its own thread (see [`SimThread`]) with these timings, and the target on it.
async fn thread_target(ttft_ms: u64, itl_ms: u64, tokens: u32) -> (SimThread, BenchTarget) {
    let s = SimThread::start(SimConfig::new(Flavor::Vllm).timing(ttft_ms, itl_ms, tokens));
    let t = target_at(&s.url).await;
    (s, t)
}

async fn target_at(base_url: &str) -> BenchTarget {
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      sim: {{base_url: {base_url}, model: qwen2_5_0_5b}}\n"
    );
    let router = factory::build(&config::load_str(&yaml, "t.yaml").unwrap())
        .await
        .unwrap();
    BenchTarget::from_router(Arc::new(router), None).unwrap()
}

/// A simulator on a runtime of its own, so that serving does not share the client's
/// workers in a test that measures how punctually the client dispatches.
struct SimThread {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimThread {
    fn start(cfg: SimConfig) -> Self {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let s = sim::start(cfg).await.unwrap();
                url_tx.send(s.base_url()).unwrap();
                let _ = stopped.await;
            });
        });
        Self {
            url: url_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for SimThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn random(input: u32, output: u32) -> Workload {
    Workload::random(input, output)
}

async fn run(t: &BenchTarget, plan: &Plan) -> BenchResult {
    let (_tx, rx) = mpsc::channel(4);
    let (ptx, _prx) = watch::channel(Progress::default());
    bench::runner::run(t, plan, rx, ptx).await.unwrap()
}

fn near(x: f64, truth: f64, tol: f64, what: &str) {
    assert!(
        (x - truth).abs() <= tol,
        "{what}: {x:.3} is not within {tol} of {truth}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_the_simulators_timings() {
    let _g = SERIAL.lock().await;
    let (_s, t) = thread_target(50, 10, 32).await;
    let plan = Plan {
        warmup: 16,
        ..closed(16, 160, random(64, 32))
    };
    let r = run(&t, &plan).await;
    assert_eq!((r.completed, r.failed, r.sent), (160, 0, 160));
    assert_eq!(
        r.total_output_tokens,
        160 * 32,
        "exact, from the server's usage"
    );
    assert_eq!(r.output_tokens_source, "usage");
    // The truth: first event at 50 ms, then one every 10 ms; 32 tokens end at 360 ms. How
    // close the client comes depends on the machine's load, so that is measured by
    // scripts/bench-punctuality; a test holds only what no delay can break: nothing is seen
    // before the server sent it, and no run is faster than the server's own pace.
    assert!(
        r.ttft.median >= 50.0 && r.ttft.p99 >= r.ttft.median,
        "never earlier than the server sent it: {:?}",
        r.ttft
    );
    assert!(r.e2el.median >= 360.0, "the last token: {:?}", r.e2el);
    assert!(r.tpot.median > 0.0 && r.itl.median > 0.0);
    assert_eq!(r.max_concurrent_requests, 16);
    // 16 in flight, each at least 360 ms: at most about 44 requests a second.
    assert!(
        r.request_throughput <= 16.0 / 0.360 * 1.01,
        "request throughput {}",
        r.request_throughput
    );
    assert!(!r.client.bound, "{:?}", r.client.warnings);
    let secs: u32 = r.series.completed.iter().sum();
    assert_eq!(
        secs, 160,
        "the per-second series accounts for every request"
    );
    let toks: f64 = r.series.output_tokens_per_s.iter().sum();
    near(toks, 160.0 * 32.0, 1e-6, "series tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_every_request_is_accounted_for_with_its_class() {
    let _g = SERIAL.lock().await;
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(5, 2, 20);
    cfg.seed = 11;
    cfg.faults = vec![
        Fault::new(FaultKind::Status {
            code: 503,
            retry_after: None,
        })
        .rate(0.2),
        Fault::new(FaultKind::Reset { after: 5 }).rate(0.1),
        Fault::new(FaultKind::Stall { after: 3, ms: None }).rate(0.1),
    ];
    let s = sim::start(cfg).await.unwrap();
    let t = target_for(&s).await;
    let plan = Plan {
        idle_timeout_s: 0.5,
        ..closed(8, 200, random(16, 20))
    };
    let r = run(&t, &plan).await;
    assert_eq!(r.sent, 200);
    assert_eq!(r.completed + r.failed, r.sent, "no request lost");
    let by = |k: &str| r.errors.get(k).copied().unwrap_or(0);
    assert!(by("http_503") > 20, "{:?}", r.errors);
    assert!(by("stream_broken") > 5, "{:?}", r.errors);
    assert!(by("timeout") > 5, "{:?}", r.errors);
    assert_eq!(
        by("http_503") + by("stream_broken") + by("timeout"),
        r.failed,
        "{:?}",
        r.errors
    );
    // The simulator saw every request too.
    assert_eq!(s.stats().requests, 200);
    // Failures do not poison the latency figures: only successes count.
    assert_eq!(r.ttft.count, r.completed);
    assert_eq!(r.total_output_tokens, r.completed * 20);
}

/// The lean HTTP/1.1 client and the provider's reqwest client see every answer alike: the same
/// figures from a healthy stream, and the same class for each kind of failure (the messages
/// are printed side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_http_clients_count_and_classify_alike() {
    use anorag::bench::HttpClient;
    let _g = SERIAL.lock().await;
    let kinds = [
        None,
        Some(FaultKind::Status {
            code: 503,
            retry_after: Some(1.0),
        }),
        Some(FaultKind::Status {
            code: 400,
            retry_after: None,
        }),
        Some(FaultKind::Reset { after: 3 }),
        Some(FaultKind::Stall { after: 2, ms: None }),
        Some(FaultKind::Malformed { after: 2 }),
        Some(FaultKind::Oversize { after: 1 }),
        Some(FaultKind::SlowHeaders { ms: 50 }),
    ];
    for kind in kinds {
        let mut seen = Vec::new();
        for http in [HttpClient::Lean, HttpClient::Reqwest] {
            let mut cfg = SimConfig::new(Flavor::Vllm).timing(2, 1, 8);
            cfg.faults = kind
                .iter()
                .map(|k| Fault::new(k.clone()).rate(1.0))
                .collect();
            let s = sim::start(cfg).await.unwrap();
            let t = target_for(&s).await;
            let plan = Plan {
                idle_timeout_s: 0.5,
                http,
                ..closed(2, 6, random(8, 8))
            };
            let r = run(&t, &plan).await;
            let want = if http == HttpClient::Lean {
                "lean"
            } else {
                "reqwest"
            };
            assert_eq!(r.client.http, want);
            assert_eq!(r.completed + r.failed, 6, "{kind:?}");
            eprintln!(
                "{kind:?} {want}: {} ok, {:?}, first: {:?}",
                r.completed,
                r.errors,
                r.error_samples.first()
            );
            seen.push((
                r.completed,
                r.errors.clone(),
                r.total_output_tokens,
                r.total_input_tokens,
                r.total_content_events,
            ));
        }
        assert_eq!(seen[0], seen[1], "{kind:?}: lean, reqwest");
        match kind {
            None | Some(FaultKind::SlowHeaders { .. }) => assert_eq!(seen[0].0, 6),
            _ => assert_eq!(seen[0].0, 0, "{kind:?}"),
        }
    }
    // A refused connection, and a server that is not there at all.
    for http in [HttpClient::Lean, HttpClient::Reqwest] {
        let dead = common::free_port();
        let t = target_at(&format!("http://127.0.0.1:{dead}/v1")).await;
        let plan = Plan {
            http,
            ..closed(1, 2, random(8, 8))
        };
        let r = run(&t, &plan).await;
        assert_eq!(
            r.errors.get("connection"),
            Some(&2),
            "{http:?}: {:?}",
            r.errors
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_achieves_the_requested_rate() {
    let _g = SERIAL.lock().await;
    let (_s, t) = thread_target(5, 1, 4).await;
    for burstiness in [1.0, f64::INFINITY] {
        let plan = Plan::new(
            Load::Open {
                rate: 50.0,
                burstiness,
                max_concurrency: None,
            },
            Stop::Requests(200),
            random(16, 4),
        );
        let r = run(&t, &plan).await;
        assert_eq!(r.completed, 200);
        let a = r.achieved_request_rate.unwrap();
        assert!(
            (a - 50.0).abs() / 50.0 < 0.01,
            "burstiness {burstiness}: achieved {a}"
        );
        // Every request's lag against its schedule is measured; how small it is, is a figure
        // for a benchmark, not a wall-clock bound in a test on a shared machine.
        assert_eq!(
            r.client.dispatch_lag.count, 200,
            "{:?}",
            r.client.dispatch_lag
        );
    }
    // A duration-bounded run at an even pace.
    let plan = Plan::new(
        Load::Open {
            rate: 40.0,
            burstiness: f64::INFINITY,
            max_concurrency: None,
        },
        Stop::DurationS(2.5),
        random(16, 4),
    );
    let r = run(&t, &plan).await;
    let a = r.achieved_request_rate.unwrap();
    assert!((a - 40.0).abs() / 40.0 < 0.01, "achieved {a}");
    assert_eq!(r.sent, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_queues_in_the_client_and_says_how_long() {
    let _g = SERIAL.lock().await;
    let (_s, t) = thread_target(100, 10, 10).await;
    let plan = Plan::new(
        Load::Open {
            rate: 100.0,
            burstiness: f64::INFINITY,
            max_concurrency: Some(4),
        },
        Stop::Requests(40),
        random(8, 10),
    );
    let r = run(&t, &plan).await;
    assert_eq!(r.completed, 40);
    assert_eq!(r.max_concurrent_requests, 4);
    assert!(r.client.queue_time.count > 20, "requests waited for a slot");
    assert!(r.client.queue_time.p99 > 100.0, "{:?}", r.client.queue_time);
    // Waiting for a slot is not lateness: a request's lag counts from when a slot freed, so it
    // stays far below the time requests queued (a lag that counted the wait would be at least
    // as long). Relative, not a bound in milliseconds: a busy machine delays both.
    assert!(
        r.client.dispatch_lag.p99 * 4.0 < r.client.queue_time.p99,
        "waiting for a slot is not lateness: lag {:?}, queue {:?}",
        r.client.dispatch_lag,
        r.client.queue_time
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_changes_and_cancel_while_running() {
    let _g = SERIAL.lock().await;
    let (_s, t) = sim_target(Flavor::Vllm, 20, 20, 20).await;
    let plan = Plan::new(
        Load::Closed { concurrency: 2 },
        Stop::DurationS(30.0),
        random(8, 20),
    );
    let h = bench::spawn(t, vec![plan]);
    let mut p = h.progress.clone();
    wait_progress(&p, |p| p.in_flight == 2 && p.completed > 0).await;
    h.control.send(Control::SetConcurrency(8)).await.unwrap();
    wait_progress(&p, |p| p.in_flight == 8 && p.concurrency == Some(8)).await;
    // Snapshots come at most ten times a second.
    let mut updates = 0;
    let window = Duration::from_secs(2);
    let t0 = std::time::Instant::now();
    p.borrow_and_update();
    while let Some(left) = window.checked_sub(t0.elapsed()) {
        if tokio::time::timeout(left, p.changed()).await.is_ok() {
            p.borrow_and_update();
            updates += 1;
        }
    }
    assert!(
        (10..=21).contains(&updates),
        "{updates} snapshots in two seconds"
    );
    h.control.send(Control::Cancel).await.unwrap();
    let results = tokio::time::timeout(Duration::from_secs(10), h.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let r = &results[0];
    assert_eq!(r.max_concurrent_requests, 8);
    assert_eq!(r.completed + r.failed, r.sent);
    assert!(
        r.errors.get("cancelled").copied().unwrap_or(0) >= 1,
        "{:?}",
        r.errors
    );
    assert_eq!(r.config["changes"][0]["concurrency"], 8);
    assert_eq!(r.config["cancelled"], true);
}

async fn wait_progress(p: &watch::Receiver<Progress>, f: impl Fn(&Progress) -> bool) {
    let mut p = p.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if f(&p.borrow_and_update()) {
                return;
            }
            p.changed().await.unwrap();
        }
    })
    .await
    .expect("the progress never showed it");
}

#[test]
fn goodput_arithmetic_on_hand_made_results() {
    let slo = Slo::parse("ttft:100,tpot:20,e2el:1000").unwrap();
    let mut rec = Recorder::new(slo, false);
    let mk = |ttft: f64, e2el: f64, tokens: u64| Outcome {
        start_s: 0.0,
        end_s: e2el,
        ttft_s: Some(ttft),
        e2el_s: Some(e2el),
        completion_tokens: Some(tokens),
        prompt_tokens: Some(5),
        content_events: tokens as u32,
        ..Outcome::default()
    };
    rec.sent = 5;
    rec.add(mk(0.05, 0.5, 26)); // TPOT 18 ms: good
    rec.add(mk(0.12, 0.5, 26)); // TTFT over
    rec.add(mk(0.05, 0.9, 26)); // TPOT 34 ms: over
    rec.add(mk(0.05, 1.2, 1)); // one token, E2EL over
    rec.add(Outcome {
        error: Some(("http_503".into(), "busy".into())),
        ..Outcome::default()
    });
    let mut r = BenchResult::default();
    r.fill_from(&rec, 2.0);
    assert_eq!(r.completed, 4);
    assert_eq!(r.failed, 1);
    assert_eq!(r.request_goodput, Some(0.5), "1 good request in 2 s");
    assert_eq!(r.request_throughput, 2.0);
    assert_eq!(r.total_output_tokens, 79);
    assert_eq!(r.total_input_tokens, 20);
    assert_eq!(r.total_token_throughput, 49.5);
    // TPOT exists for the three multi-token requests only.
    assert_eq!(r.tpot.count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_keys_are_present_and_typed_as_vllms() {
    let _g = SERIAL.lock().await;
    let (_s, t) = sim_target(Flavor::Vllm, 2, 1, 8).await;
    let plan = Plan {
        slo: Slo::parse("ttft:1000").unwrap(),
        detailed: true,
        ..closed(4, 20, random(8, 8))
    };
    let v = run(&t, &plan).await.to_json();
    for k in [
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "num_prompts",
        "max_concurrent_requests",
    ] {
        assert!(v[k].is_u64(), "{k} is an integer: {}", v[k]);
    }
    for k in [
        "duration",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "request_goodput",
        "max_output_tokens_per_s",
        "burstiness",
    ] {
        assert!(v[k].is_f64(), "{k} is a float: {}", v[k]);
    }
    for m in ["ttft", "tpot", "itl", "e2el"] {
        for p in ["mean", "median", "std", "p90", "p95", "p99"] {
            let k = format!("{p}_{m}_ms");
            assert!(v[&k].is_f64(), "{k}: {}", v[&k]);
        }
    }
    assert_eq!(
        v["request_rate"], "inf",
        "vLLM writes an unlimited rate as the string inf"
    );
    assert_eq!(v["max_concurrency"], 4);
    assert_eq!(v["completed"], 20);
    for k in [
        "ttfts",
        "itls",
        "input_lens",
        "output_lens",
        "latencies",
        "errors",
    ] {
        assert_eq!(v[k].as_array().map(Vec::len), Some(20), "{k}");
    }
    assert!(v["ttfts"][0].is_f64(), "seconds, as vLLM stores them");
    assert!(v["client"]["dispatch_lag_ms"]["p99"].is_f64());
    assert!(v["client"]["cpu_pct_of_one_core"].is_f64());
    assert!(v["series"]["completed"].is_array());
    assert!(v["errors_by_class"].is_object());
    // A saved result reads back.
    let back = BenchResult::from_json(&v).unwrap();
    assert_eq!(back.completed, 20);
    assert_eq!(back.ttft.median, v["median_ttft_ms"].as_f64().unwrap());
}

#[test]
fn workloads_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("p.jsonl");
    std::fs::write(&jsonl, "{\"prompt\": \"Tell me about GPUs\", \"output_len\": 7}\n\"plain string prompt\"\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi there\"}], \"max_tokens\": 3}\n").unwrap();
    let w = Workload::Jsonl {
        path: jsonl.clone(),
        output_len: None,
    };
    let ps = w.prompts(6, 1).unwrap();
    assert_eq!(ps.len(), 6);
    let mut lens: Vec<u32> = ps.iter().map(|p| p.output_len).collect();
    lens.sort();
    assert_eq!(lens, [3, 3, 7, 7, 128, 128]);
    let sg = dir.path().join("sg.json");
    let long_answer = "word ".repeat(40);
    std::fs::write(
        &sg,
        serde_json::json!([
            {"id": "a", "conversations": [{"from": "human", "value": "Explain the KV cache in vLLM please"}, {"from": "gpt", "value": long_answer}]},
            {"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
            {"id": "c", "conversations": [{"from": "gpt", "value": "no human turn"}]}
        ])
        .to_string(),
    )
    .unwrap();
    let ps = Workload::ShareGpt {
        path: sg,
        output_len: None,
    }
    .prompts(3, 0)
    .unwrap();
    assert!(
        ps.iter().all(|p| p.text.starts_with("Explain")),
        "short and broken conversations are dropped"
    );
    assert_eq!(ps[0].output_len, 50, "the answer's estimated length");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"nope\": 1}\n").unwrap();
    let e = Workload::Jsonl {
        path: bad,
        output_len: None,
    }
    .prompts(1, 0)
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 1: no `prompt`"), "{e}");
}

/// The shipped prompt set loads, and a run over it asks each prompt's own output length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_prompt_set_runs_with_its_output_lengths() {
    let _g = SERIAL.lock().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/prompts.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let want: u64 = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["output_len"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let lines = text.lines().count();
    let (_s, t) = sim_target(Flavor::Vllm, 0, 0, 4096).await;
    let w = Workload::Jsonl {
        path,
        output_len: None,
    };
    let plan = Plan::new(
        Load::Closed { concurrency: 8 },
        Stop::Requests(lines as u64),
        w,
    );
    let r = run(&t, &plan).await;
    assert_eq!((r.completed, r.failed), (lines as u64, 0));
    assert_eq!(
        r.total_output_tokens, want,
        "each prompt once, each with its own output_len"
    );
}

mod cli {
    use super::*;
    use std::process::Command;

    async fn run_cli(cfg: std::path::PathBuf, args: Vec<String>) -> std::process::Output {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
                .arg("--config")
                .arg(cfg)
                .arg("bench")
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_command_outputs_sweeps_compares_and_saves() {
        let _g = SERIAL.lock().await;
        let v = sim::start(SimConfig::new(Flavor::Vllm).timing(5, 2, 8))
            .await
            .unwrap();
        let o = sim::start(SimConfig::new(Flavor::Ollama).timing(10, 3, 8))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dashboard(&dir, &format!(
                "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      fast: {{base_url: {}, model: qwen2_5_0_5b}}\n  ollama: {{base_url: \"{}\", model: \"qwen2.5:0.5b\"}}\n",
                v.base_url(),
                o.base_url()
            ));

        let out = run_cli(
            cfg.clone(),
            args("--route fast --concurrency 4 --requests 20 --input-len 8 --output-len 8 --json"),
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["completed"], 20);
        assert_eq!(r["total_output_tokens"], 160);
        assert_eq!(r["label"], "fast");

        let out = run_cli(cfg.clone(), args("--route fast --sweep concurrency=1,2,4 --requests 8 --input-len 8 --output-len 8 --json")).await;
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let steps = s["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        let conc: Vec<u64> = steps
            .iter()
            .map(|x| x["max_concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(conc, [1, 2, 4]);

        let out = run_cli(
            cfg.clone(),
            args("--route fast --sweep rate=20,40 --requests 10 --input-len 8 --output-len 8"),
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Sweep on route fast") && text.contains("20.0") && text.contains("40.0"),
            "{text}"
        );

        // vLLM against Ollama, the same workload, side by side.
        let out = run_cli(cfg.clone(), args("--route fast --compare ollama --concurrency 2 --requests 10 --input-len 8 --output-len 8")).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("B/A") && text.contains("Median TTFT (ms)"),
            "{text}"
        );
        assert!(text.contains("fast") && text.contains("ollama"), "{text}");
        // The servers' own view of both runs: vLLM's /metrics for `fast`, none from Ollama.
        let server_row = |text: &str, name: &str| -> Vec<String> {
            let line = text
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} row in {text}"));
            line[name.len()..]
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert!(text.contains("Server (vLLM /metrics)"), "{text}");
        let ttft = server_row(&text, "Server median TTFT (ms)");
        assert!(ttft[0].parse::<f64>().unwrap() > 0.0, "{ttft:?}");
        assert_eq!(ttft[1], "-", "Ollama exports no /metrics");
        let out = run_cli(cfg.clone(), args("--route fast --compare ollama --concurrency 2 --requests 10 --input-len 8 --output-len 8 --json")).await;
        let both: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(both["a"]["label"], "fast");
        assert_eq!(both["b"]["label"], "ollama");
        assert_eq!(both["b"]["backend"], "ollama");
        assert!(
            both["b"]["median_ttft_ms"].as_f64().unwrap()
                > both["a"]["median_ttft_ms"].as_f64().unwrap(),
            "Ollama's TTFT is the longer here"
        );

        // Saved result, CSV, and a later run compared against the saved one.
        let saved = dir.path().join("run.json");
        let csv = dir.path().join("run.csv");
        let out = run_cli(
            cfg.clone(),
            words(&format!(
                "--route fast --requests 10 --input-len 8 --output-len 8 --save-result {} --csv {}",
                saved.display(),
                csv.display()
            )),
        )
        .await;
        assert!(out.status.success());
        let csv_text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(csv_text.lines().count(), 2);
        assert!(csv_text.starts_with("date,label,backend,model_id"));
        assert!(csv_text.contains("median_ttft_ms"));
        let out = run_cli(
            cfg.clone(),
            words(&format!(
                "--route ollama --requests 10 --input-len 8 --output-len 8 --baseline {}",
                saved.display()
            )),
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("baseline") && text.contains("B/A"), "{text}");
        // The saved run's server view comes back with it.
        let ttft = server_row(&text, "Server median TTFT (ms)");
        assert!(ttft[0].parse::<f64>().unwrap() > 0.0, "{ttft:?}");
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        let back = BenchResult::from_json(&saved).unwrap();
        assert_eq!(
            serde_json::to_value(back.server_metrics.as_ref().unwrap()).unwrap(),
            saved["server_metrics"],
            "a saved server view reads back whole"
        );
    }

    #[tokio::test]
    async fn bad_arguments_and_runs_that_fail_entirely() {
        // Seven runs of the binary: not beside a test that measures the client's timing.
        let _g = SERIAL.lock().await;
        let dead = common::free_port();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dashboard(&dir, &format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      dead: {{base_url: http://127.0.0.1:{dead}/v1, model: m}}\n"));
        for (a, want) in [
            (
                "--requests 0",
                "'--requests <REQUESTS>': `0` is not a whole number from 1",
            ),
            ("--sweep speed=1,2", "sweep over concurrency or rate"),
            ("--goodput ttft=5", "--goodput"),
            ("--requests 5 --duration 3", "not both"),
            ("--dataset-name sharegpt", "needs --dataset-path"),
            ("--route nope", "unknown route `nope`"),
        ] {
            let out = run_cli(cfg.clone(), args(a)).await;
            assert_eq!(out.status.code(), Some(2), "{a}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(want),
                "{a}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = run_cli(
            cfg.clone(),
            args("--requests 3 --input-len 4 --output-len 4 --json"),
        )
        .await;
        assert_eq!(out.status.code(), Some(1));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["failed"], 3);
        assert_eq!(r["errors_by_class"]["connection"], 3);
        assert!(String::from_utf8_lossy(&out.stderr).contains("no request succeeded"));
    }
}

/// The SLO search against a simulator told to have a knee: at most 4 requests generate at
/// once (the rest wait, as under vLLM's --max-num-seqs), so a fifth concurrent request waits a
/// whole answer for its first token. `--find-max concurrency` answers 4, with the probes and
/// the margin saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_max_finds_the_knee_the_simulator_is_told_to_have() {
    // An answer takes 20 + 19 x 10 ms: a request past the capacity waits ~200 ms, far over
    // the limit; those within it see ~20 ms, far under it (room for a busy machine).
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(20, 10, 20);
    cfg.max_running = Some(4);
    cfg.record_requests = false;
    let s = sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dashboard(&dir, &format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      sim: {{base_url: \"{}\", model: qwen2_5_0_5b}}\n",
            s.base_url()
        ));
    let saved = dir.path().join("find.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .arg("--config")
        .arg(&conf)
        .args([
            "bench",
            "--route",
            "sim",
            "--find-max",
            "concurrency",
            "--slo",
            "p99_ttft_ms<=110",
            "--requests",
            "24",
            "--input-len",
            "16",
            "--output-len",
            "20",
            "--no-progress",
            "--save-result",
        ])
        .arg(&saved)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("highest concurrency that meets the SLO: 4 ("),
        "{stdout}"
    );
    assert!(stdout.contains("5 misses it"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let f = &v["find_max"];
    assert_eq!(f["answer"], 4.0, "{f}");
    assert_eq!(f["first_miss"], 5.0, "{f}");
    let probes = f["probes"].as_array().unwrap();
    assert_eq!(probes.len(), v["results"].as_array().unwrap().len());
    let loads: Vec<f64> = probes.iter().map(|p| p["load"].as_f64().unwrap()).collect();
    // 24 requests a probe hold at most 6 in flight: the doubling stops there.
    assert_eq!(loads, [1.0, 2.0, 4.0, 6.0, 5.0]);
    for p in probes {
        let ok = p["load"].as_f64().unwrap() <= 4.0;
        assert_eq!(p["ok"], ok, "{p}");
    }
    assert!(f["margin"][0][2].as_f64().unwrap() > 0.0, "{f}");
}

/// `--json` prints one JSON document on stdout (the probes' lines go to stderr); a probe of
/// 20 requests is never asked for more than 5 in flight; a search where every probe met the
/// SLO says no knee was found rather than naming its last probe the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_max_json_is_one_document_and_no_knee_is_said() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args([
            "bench",
            "--route",
            "builtin",
            "--find-max",
            "concurrency",
            "--slo",
            "p99_ttft_ms<=60000",
            "--requests",
            "20",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--no-progress",
            "--json",
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let f = &v["find_max"];
    assert_eq!(f["knee_found"], false, "{f}");
    assert_eq!(f["cap"]["load"], 5.0, "{f}");
    let loads: Vec<f64> = f["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["load"].as_f64().unwrap())
        .collect();
    assert_eq!(loads, [1.0, 2.0, 4.0, 5.0]);
    assert!(stderr.contains("no knee found up to concurrency 5: every probe met the SLO (20 requests a probe hold at most 5"), "{stderr}");
    assert!(
        !stderr.contains("highest concurrency that meets"),
        "{stderr}"
    );
}

/// The simulator's capacity shows in its /metrics as vLLM's does: requests past it wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_at_capacity_reports_waiting_requests() {
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(20, 10, 30);
    cfg.max_running = Some(2);
    let s = sim::start(cfg).await.unwrap();
    let t = target_for(&s).await;
    let plan = closed(6, 12, random(8, 30));
    let run = tokio::spawn({
        let (t, plan) = (t.clone(), plan.clone());
        async move { run(&t, &plan).await }
    });
    let metrics = format!("{}/metrics", s.base_url().trim_end_matches("/v1"));
    let mut seen = (0.0f64, 0.0f64);
    for _ in 0..40 {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        let scrape =
            anorag::telemetry::vllm_metrics::Scrape::parse(&text, None, std::time::Instant::now());
        seen.0 = seen.0.max(scrape.running.unwrap_or(0.0));
        seen.1 = seen.1.max(scrape.waiting.unwrap_or(0.0));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = run.await.unwrap();
    assert_eq!(r.completed, 12);
    assert_eq!(seen.0, 2.0, "never more than the capacity runs");
    assert!(seen.1 >= 1.0, "the rest wait: {seen:?}");
}

/// An open loop ramping linearly from 40 to 200 requests/s over 400 requests (vLLM's
/// `--ramp-up-strategy linear`), evenly spaced: the sends of each second follow the schedule
/// (within one request or 1%), and the last full second runs at the end rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_reaches_its_end_rate() {
    use anorag::bench::arrivals::{ramp_schedule, Ramp, RampStrategy};
    let _g = SERIAL.lock().await;
    let (_s, t) = thread_target(2, 1, 2).await;
    let ramp = Ramp {
        strategy: RampStrategy::Linear,
        start_rps: 40.0,
        end_rps: 200.0,
    };
    let n = 400;
    let mut plan = Plan::new(
        Load::Open {
            rate: 200.0,
            burstiness: f64::INFINITY,
            max_concurrency: None,
        },
        Stop::Requests(n),
        random(8, 2),
    );
    plan.ramp = Some(ramp);
    plan.server_metrics_interval_s = 0.0;
    plan.detailed = true;
    let r = run(&t, &plan).await;
    assert_eq!(r.completed, n);
    let mut planned = [0u32; 16];
    for d in ramp_schedule(n as usize, ramp, f64::INFINITY, 0) {
        planned[d.as_secs_f64() as usize] += 1;
    }
    // How punctually each second's sends leave depends on the machine's load: measured by
    // scripts/bench-punctuality. Here: every request was sent and counted in a second, the
    // schedule itself ramps to the end rate, and the sends leave in its order.
    let sent: u32 = r.series.sent.iter().sum();
    assert_eq!(u64::from(sent), n, "{:?}", r.series.sent);
    assert_eq!(u64::from(planned.iter().sum::<u32>()), n);
    let starts: Vec<f64> =
        serde_json::from_value(r.detail.as_ref().unwrap()["start_times"].clone()).unwrap();
    assert_eq!(starts.len(), n as usize);
    let sched: Vec<f64> = ramp_schedule(n as usize, ramp, f64::INFINITY, 0)
        .iter()
        .map(|d| d.as_secs_f64())
        .collect();
    let k = 50;
    let planned_rate = (k - 1) as f64 / (sched[n as usize - 1] - sched[n as usize - k]);
    assert!(planned_rate > 0.95 * ramp.end_rps, "{planned_rate}");
    let first_rate = (k - 1) as f64 / (sched[k - 1] - sched[0]);
    assert!(first_rate < 0.5 * ramp.end_rps, "{first_rate}");
    let mut sorted = starts.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        sorted.last().unwrap() >= sched.last().unwrap(),
        "no send before its time: last at {}, scheduled {}",
        sorted.last().unwrap(),
        sched.last().unwrap()
    );
    assert_eq!(r.config["ramp"]["strategy"], "linear");
}

/// The prefix workload on the wire: three prefixes of 32 words shared round robin by twelve
/// requests, each with 8 words of its own, as the simulator received them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefix_dataset_really_shares_prefixes() {
    let (s, t) = sim_target(Flavor::Vllm, 1, 1, 2).await;
    let plan = closed(
        3,
        12,
        Workload::Prefix {
            prefix_len: 32,
            suffix_len: 8,
            groups: 3,
            output_len: 2,
        },
    );
    let r = run(&t, &plan).await;
    assert_eq!(r.completed, 12);
    let sent: Vec<String> = s
        .requests()
        .iter()
        .map(|b| b["messages"][0]["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent.len(), 12);
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for text in &sent {
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words.len(), 40, "{text}");
        groups
            .entry(words[..32].join(" "))
            .or_default()
            .push(words[32..].join(" "));
    }
    assert_eq!(groups.len(), 3, "three shared prefixes");
    assert!(groups.values().all(|v| v.len() == 4), "{groups:?}");
    let suffixes: std::collections::BTreeSet<&String> = groups.values().flatten().collect();
    assert_eq!(suffixes.len(), 12, "every request has its own suffix");
}

/// Multi-turn on the wire: each turn sends the whole history, the server's own answers
/// included, plus a new question; the per-turn figures show the prompt growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_sends_the_growing_history() {
    let (s, t) = sim_target(Flavor::Vllm, 1, 1, 6).await;
    let plan = closed(
        2,
        3,
        Workload::MultiTurn {
            turns: 3,
            input_len: 10,
            output_len: 6,
            think_time_s: 0.0,
        },
    );
    let r = run(&t, &plan).await;
    assert_eq!(
        (r.completed, r.failed),
        (9, 0),
        "3 conversations of 3 turns"
    );
    let bodies = s.requests();
    assert_eq!(bodies.len(), 9);
    let mut by_conv: std::collections::BTreeMap<String, Vec<Vec<serde_json::Value>>> =
        Default::default();
    for b in &bodies {
        let m = b["messages"].as_array().unwrap().clone();
        by_conv
            .entry(m[0]["content"].as_str().unwrap().to_string())
            .or_default()
            .push(m);
    }
    assert_eq!(by_conv.len(), 3);
    for turns in by_conv.values_mut() {
        turns.sort_by_key(Vec::len);
        let lens: Vec<usize> = turns.iter().map(Vec::len).collect();
        assert_eq!(lens, [1, 3, 5], "question, answer, question, ...");
        for k in 1..turns.len() {
            // The history so far, then the server's answer, then a new question.
            assert_eq!(turns[k][..turns[k - 1].len()], turns[k - 1][..]);
            let answer = &turns[k][turns[k - 1].len()];
            assert_eq!(answer["role"], "assistant");
            assert!(
                answer["content"].as_str().unwrap().contains("anorag-tui"),
                "{answer}"
            );
            assert_eq!(turns[k].last().unwrap()["role"], "user");
        }
    }
    assert_eq!(r.per_turn.len(), 3);
    let p: Vec<f64> = r
        .per_turn
        .iter()
        .map(|t| t.mean_prompt_tokens.unwrap())
        .collect();
    assert!(
        p[0] < p[1] && p[1] < p[2],
        "the prompt grows with the history: {p:?}"
    );
    assert!(r
        .per_turn
        .iter()
        .all(|t| t.completed == 3 && t.ttft_p50_ms.is_some()));
    assert_eq!(r.to_json()["per_turn"].as_array().unwrap().len(), 3);
}

/// A timed closed loop makes a pool of exact prompts and uses them in turn; once the run has
/// sent more requests than the pool holds, the result says so (a repeat can hit vLLM's prefix
/// cache), and a counted run of the same size does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_run_that_reuses_its_prompts_says_so() {
    let _g = SERIAL.lock().await;
    let (_s, t) = sim_target(Flavor::Vllm, 0, 0, 2).await;
    let tokenizer = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer/tiny-qwen2.json");
    let timed = Plan {
        tokenizer: Some(tokenizer.clone()),
        server_metrics_interval_s: 0.0,
        ..Plan::new(
            Load::Closed { concurrency: 8 },
            Stop::DurationS(1.5),
            random(8, 2),
        )
    };
    // Longer runs on a machine too busy to send 513 requests in the first.
    let mut r = run(&t, &timed).await;
    for d in [4.0, 10.0] {
        if r.sent > 512 {
            break;
        }
        r = run(
            &t,
            &Plan {
                stop: Stop::DurationS(d),
                ..timed.clone()
            },
        )
        .await;
    }
    let p = r.prompt_tokens.clone().unwrap();
    assert_eq!(p.distinct_prompts, 512, "{p:?}");
    assert!(r.sent > 512, "{}", r.sent);
    let w = p.warning.expect("a warning about reused prompts");
    assert!(
        w.contains(&format!("{} requests used 512 distinct prompts", r.sent)),
        "{w}"
    );
    let counted = Plan {
        stop: Stop::Requests(600),
        ..timed
    };
    let r = run(&t, &counted).await;
    let p = r.prompt_tokens.unwrap();
    assert_eq!(p.distinct_prompts, 600);
    assert_eq!(p.warning, None);
}

/// The server view's cadence, where the server always answers (the simulator on a runtime of
/// its own): a scrape every interval, on the run's time axis. Against the real vLLM the
/// tier asserts only what does not depend on how soon a loaded server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_view_is_sampled_every_interval_on_the_runs_axis() {
    let _g = SERIAL.lock().await;
    let (_s, t) = thread_target(5, 5, 40).await;
    let mut plan = Plan::new(
        Load::Closed { concurrency: 2 },
        Stop::DurationS(3.0),
        random(8, 40),
    );
    plan.server_metrics_interval_s = 0.2;
    let r = run(&t, &plan).await;
    assert!(r.completed > 0, "{}", r.completed);
    let m = r
        .server_metrics
        .as_ref()
        .expect("the simulator has vLLM's /metrics");
    assert_eq!(m.error, None, "no scrape failed");
    assert_eq!(m.interval_s, 0.2);
    let times: Vec<f64> = m.samples.iter().map(|x| x.t_s).collect();
    // On the cadence (the last sample is the closing scrape, taken when the run ends): a tick
    // waits out its interval, a late one delays the next. A sample's time is when its answer
    // came, so two may sit a little closer than the interval; never half of it.
    assert!(times.len() >= 2, "{times:?}");
    for w in times[..times.len() - 1].windows(2) {
        assert!(
            w[1] - w[0] >= 0.1,
            "two scrapes too close for a 0.2 s interval: {times:?}"
        );
    }
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!(
        times.iter().all(|t| *t > 0.0 && *t <= r.duration + 1.0),
        "{times:?} in {}",
        r.duration
    );
    // At least one a second: a scrape every 0.2 s leaves 4 spare ticks in each.
    for sec in 0..r.duration.floor() as u64 {
        assert!(
            times.iter().any(|t| *t as u64 == sec),
            "second {sec} has no sample: {times:?}"
        );
    }
    assert!(
        m.samples.iter().any(|x| x.running.unwrap_or(0.0) > 0.0),
        "{m:?}"
    );
}
