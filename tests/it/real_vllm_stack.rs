//! Real-vLLM tier through the whole stack: the supervisor launches the genuine server from a
//! profile, then chat, `/metrics`, the load test and stop run against it.
//! Skipped with a printed reason only when ANORAG_VLLM_BIN is unset; `.ci/run` sets it.
use crate::common;

use anorag::config::{self, Config};
use anorag::procfs;
use anorag::provider::{factory, ChatRequest, StreamEvent};
use anorag::telemetry::vllm_metrics;
use common::{free_port, group_members, RealVllmEnv};
use futures::StreamExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[path = "real_vllm_stack/gateway.rs"]
mod gateway;

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");
const SERVED: &str = "qwen2_5_0_5b";

struct Stack {
    dir: tempfile::TempDir,
    cfg_path: PathBuf,
    port: u16,
}

impl Stack {
    fn new(env: &RealVllmEnv) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let yaml = format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      real: {{base_url: http://127.0.0.1:{port}/v1, model: {SERVED}}}\n    params: {{temperature: 0.0, timeout: 120}}\nservers:\n  real:\n    kind: vllm\n    executable: {}\n    model: {}\n    served_model_name: {SERVED}\n    port: {port}\n    route: real\n    dtype: float32\n    max_model_len: 2048\n    enforce_eager: true\n    stop_timeout: 60\n",
            env.bin, env.model
        );
        let cfg_path = dir.path().join("dashboard.yaml");
        std::fs::write(&cfg_path, yaml).unwrap();
        Self {
            dir,
            cfg_path,
            port,
        }
    }

    /// `bench --route real ARGS --json --no-progress`, which must succeed: its result.
    fn bench(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["bench", "--route", "real", "--json", "--no-progress"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(EXE)
            .args(["--config", self.cfg_path.to_str().unwrap()])
            .args(args)
            .env("ANORAG_STATE_DIR", self.dir.path().join("state"))
            .output()
            .unwrap()
    }

    fn config(&self) -> Config {
        config::load(&config::Source::File(self.cfg_path.clone())).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.cli(&["server", "status", "real", "--json"]).stdout).unwrap()
    }
}

impl Drop for Stack {
    /// Whatever happened, no vLLM outlives the test.
    fn drop(&mut self) {
        let st = self.status();
        if st["state"] != "exited" && st["state"] != "crashed" && st["state"] != "stopped" {
            let _ = self.cli(&["server", "stop", "real", "--timeout", "5"]);
        }
        if let Some(pg) = st["pgid"].as_i64() {
            for p in group_members(pg as i32) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_vllm_through_the_supervisor() {
    let Some(env) = RealVllmEnv::from_env("real_vllm_through_the_supervisor") else {
        return;
    };
    let stack = Stack::new(&env);

    // start --wait: exits 0 once /health answers 200.
    let t0 = Instant::now();
    let out = stack.cli(&["server", "start", "real", "--wait", "--timeout", "300"]);
    let to_ready = t0.elapsed();
    assert!(
        out.status.success(),
        "start --wait failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = stack.status();
    assert_eq!(st["state"], "ready");
    let pgid = st["pgid"].as_i64().unwrap() as i32;
    let members = group_members(pgid);
    eprintln!(
        "[real-vllm] server start --wait: ready after {:.1} s (monitor says {:.1} s); {} processes in its group",
        to_ready.as_secs_f64(),
        st["ready_after_s"].as_f64().unwrap(),
        members.len()
    );
    assert!(
        members.len() >= 2,
        "vLLM runs an API server and an engine core: {members:?}"
    );
    assert!(!st["argv"].as_array().unwrap().is_empty());

    // A chat through its route.
    let router = factory::build(&stack.config()).await.unwrap();
    let req = ChatRequest {
        max_tokens: Some(16),
        ignore_eos: true,
        ..ChatRequest::prompt("Say hello in one word.")
    };
    let mut rs = router.chat_stream(Some("real"), &req).await.unwrap();
    assert_eq!(
        rs.served_by.base_url,
        format!("http://127.0.0.1:{}/v1", stack.port)
    );
    let mut usage = None;
    while let Some(ev) = rs.stream.next().await {
        if let StreamEvent::Usage { usage: u, .. } = ev.unwrap() {
            usage = Some(u);
        }
    }
    assert_eq!(usage.unwrap().completion_tokens, 16);

    // /metrics before and after some chats: vLLM's generation counter moves by exactly the
    // completion tokens the chats reported.
    let scrape = || gateway::scrape(stack.port);
    let before = scrape().await;
    let mut reported = 0;
    for n in [5u32, 9, 13, 21] {
        let r = router
            .chat(
                Some("real"),
                &ChatRequest {
                    max_tokens: Some(n),
                    ignore_eos: true,
                    ..ChatRequest::prompt("Count to ten.")
                },
            )
            .await
            .unwrap();
        reported += r.response.usage.unwrap().completion_tokens;
    }
    let after = scrape().await;
    let delta = after.generation_tokens_total.unwrap() - before.generation_tokens_total.unwrap();
    assert_eq!(
        delta as u64, reported,
        "vLLM's counter agrees with the usage the chats reported"
    );
    assert_eq!(reported, 5 + 9 + 13 + 21);
    let m = vllm_metrics::derive(Some(&before), &after);
    assert!(m.generation_tokens_per_s.unwrap() > 0.0);
    assert!(
        m.e2e_p50_ms.is_some() && m.ttft_p50_ms.is_some(),
        "window percentiles from the histograms"
    );
    eprintln!(
        "[real-vllm] /metrics: generation_tokens_total {} -> {} (+{delta}), chats reported {reported}; window TTFT p50 {:.1} ms, e2e p50 {:.1} ms",
        before.generation_tokens_total.unwrap(),
        after.generation_tokens_total.unwrap(),
        m.ttft_p50_ms.unwrap(),
        m.e2e_p50_ms.unwrap()
    );

    // `routes --json` carries vLLM's own numbers for this route.
    let out = stack.cli(&["routes", "--json"]);
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &routes[0]["targets"][0];
    assert_eq!(t["state"], "up");
    for k in common::VLLM_METRIC_KEYS {
        assert!(t["metrics"][k].is_number(), "{k}: {t}");
    }
    assert_eq!(
        t["metrics"]["generation_tokens_total"].as_f64(),
        after.generation_tokens_total
    );

    // The load test: 40 requests at concurrency 4, 16 output tokens each. Everything
    // completes, and vLLM's own counter moves by exactly the tokens we counted.
    let before = scrape().await;
    let run = [
        "--concurrency",
        "4",
        "--requests",
        "40",
        "--input-len",
        "64",
        "--output-len",
        "16",
    ];
    let r = stack.bench(&run);
    let after = scrape().await;
    assert_eq!(r["completed"], 40, "{r}");
    assert_eq!(r["failed"], 0);
    assert_eq!(r["total_output_tokens"], 640);
    assert_eq!(r["output_tokens_source"], "usage");
    let moved = after.generation_tokens_total.unwrap() - before.generation_tokens_total.unwrap();
    assert_eq!(
        moved, 640.0,
        "vLLM's generation counter agrees with the bench"
    );
    let prompt_moved = after.prompt_tokens_total.unwrap() - before.prompt_tokens_total.unwrap();
    assert_eq!(
        prompt_moved as u64,
        r["total_input_tokens"].as_u64().unwrap(),
        "and so does its prompt counter"
    );
    eprintln!(
        "[real-vllm] bench c=4, 40 requests, 16 tokens: {:.2} req/s, {:.1} output tok/s, TTFT median {:.1} ms p99 {:.1} ms, TPOT median {:.2} ms, ITL median {:.2} ms, E2EL median {:.1} ms; vLLM counter +{moved}",
        r["request_throughput"].as_f64().unwrap(),
        r["output_throughput"].as_f64().unwrap(),
        r["median_ttft_ms"].as_f64().unwrap(),
        r["p99_ttft_ms"].as_f64().unwrap(),
        r["median_tpot_ms"].as_f64().unwrap(),
        r["median_itl_ms"].as_f64().unwrap(),
        r["median_e2el_ms"].as_f64().unwrap()
    );
    assert_eq!(r["client"]["http_client"], "lean", "{}", r["client"]);

    // The same run through the provider's reqwest client: the same requests, answers and
    // token counts, by vLLM's count, as the lean client's.
    let q = stack.bench(&[&run[..], &["--http-client", "reqwest"]].concat());
    assert_eq!(q["client"]["http_client"], "reqwest");
    // Not the number of chunks: vLLM merges the tokens of a request whose stream is behind
    // into one chunk (its output collector), so that count follows the machine's load.
    for k in [
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
    ] {
        assert_eq!(q[k], r[k], "{k}: lean {} reqwest {}", r[k], q[k]);
    }
    eprintln!(
        "[real-vllm] the same run through reqwest: TTFT median {:.1} ms (lean {:.1}), ITL median {:.2} ms (lean {:.2}); tokens in/out {}/{} both",
        q["median_ttft_ms"].as_f64().unwrap(),
        r["median_ttft_ms"].as_f64().unwrap(),
        q["median_itl_ms"].as_f64().unwrap(),
        r["median_itl_ms"].as_f64().unwrap(),
        r["total_input_tokens"],
        r["total_output_tokens"]
    );

    // vLLM refusing every request (prompts past its 2048-token context): both clients count
    // each as http_400 and keep vLLM's own words.
    for http in ["lean", "reqwest"] {
        let out = stack.cli(&[
            "bench",
            "--route",
            "real",
            "--json",
            "--no-progress",
            "--requests",
            "3",
            "--input-len",
            "3000",
            "--output-len",
            "4",
            "--http-client",
            http,
        ]);
        assert_eq!(out.status.code(), Some(1), "every request failed ({http})");
        let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(f["errors_by_class"]["http_400"], 3, "{http}: {f}");
        let sample = f["error_samples"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            sample.contains("context") || sample.contains("maximum") || sample.contains("2048"),
            "{http}: vLLM's reason is kept: {sample}"
        );
        eprintln!("[real-vllm] --input-len 3000 on a 2048-token context through {http}: 3 x http_400, \"{}\"", &sample[..sample.len().min(100)]);
    }

    // Exact prompt lengths from vLLM's own /tokenize: with --range-ratio 0 every request's
    // server-counted prompt is 100 content tokens plus the chat template's, exactly; with
    // --range-ratio 0.5 each request's count is exact too.
    for (ratio, n) in [("0", "12"), ("0.5", "24")] {
        let file = stack.dir.path().join(format!("exact-{ratio}.json"));
        stack.bench(&[
            "--concurrency",
            "4",
            "--requests",
            n,
            "--input-len",
            "100",
            "--range-ratio",
            ratio,
            "--output-len",
            "4",
            "--save-result",
            file.to_str().unwrap(),
            "--save-detailed",
        ]);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let p = &r["prompt_tokens"];
        assert_eq!(p["method"], "server_tokenize", "{p}");
        assert_eq!(p["inexact_prompts"], 0, "{p}");
        let overhead = p["template_overhead"]
            .as_u64()
            .expect("the template's tokens");
        assert!(overhead > 0, "{p}");
        let asked: Vec<u64> = serde_json::from_value(r["asked_input_lens"].clone()).unwrap();
        let sent: Vec<u64> = serde_json::from_value(r["input_lens"].clone()).unwrap();
        assert_eq!(asked.len(), n.parse::<usize>().unwrap());
        for (a, s) in asked.iter().zip(&sent) {
            assert_eq!(
                *s,
                a + overhead,
                "server prompt_tokens = asked + template ({ratio})"
            );
        }
        if ratio == "0" {
            assert!(asked.iter().all(|a| *a == 100), "{asked:?}");
        } else {
            assert!(asked.iter().all(|a| (50..=150).contains(a)), "{asked:?}");
            assert!(asked.iter().any(|a| *a != 100), "{asked:?}");
        }
        assert_eq!(p["asked_total"], asked.iter().sum::<u64>());
        assert_eq!(p["sent_total"], sent.iter().sum::<u64>());
        eprintln!("[real-vllm] --input-len 100 --range-ratio {ratio}: {n} requests, each exactly its asked length + {overhead} template tokens by vLLM's count");
    }

    // The server's view on the run's time axis: /metrics every 0.25 s while 4 requests run
    // at a time for 3 s, and the server's own TTFT and E2E over the run beside the client's.
    // How often vLLM's API server answers a scrape depends on the machine's load (it shares
    // two cores with its engine and our client; scrapes have waited past their 2 s timeout for
    // seconds on end), so the cadence is tested on the simulator (tests/it/bench.rs) and here
    // only what holds however loaded the machine is: the series exists, its times increase
    // on the run's axis, and the histograms counted exactly the requests we completed.
    // "A request seen running" needs one scrape to land while tokens flow; a run whose
    // scrapes all missed that (the gauge is set by the starved API server) is run again, and
    // said.
    let mut tries = 0;
    let r = loop {
        tries += 1;
        let r = stack.bench(&[
            "--concurrency",
            "4",
            "--duration",
            "3",
            "--input-len",
            "64",
            // Long answers keep the server busy between scrapes (a short request is over in
            // a few ms on this model, and the gauge shows what runs at the scrape's moment).
            "--output-len",
            "256",
            "--server-metrics-interval",
            "0.25",
        ]);
        let seen = r["server_metrics"]["samples"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["running"].as_f64().unwrap_or(0.0) > 0.0));
        if seen || tries == 3 {
            break r;
        }
        eprintln!("[real-vllm] no scrape of run {tries} saw a request running (vLLM's API server was starved of CPU: {}); running the measurement again", r["server_metrics"]["error"]);
    };
    let m = &r["server_metrics"];
    let samples = m["samples"].as_array().unwrap();
    let duration = r["duration"].as_f64().unwrap();
    assert!(!samples.is_empty(), "a series: {m}");
    let times: Vec<f64> = samples.iter().map(|x| x["t_s"].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[1] > w[0]) && times[0] > 0.0,
        "times increase on the run's axis: {times:?}"
    );
    assert!(
        samples
            .iter()
            .any(|x| x["running"].as_f64().unwrap_or(0.0) > 0.0),
        "requests running during the run: {m}"
    );
    let completed = r["completed"].as_f64().unwrap();
    assert_eq!(m["ttft_ms"]["count"].as_f64(), Some(completed), "{m}");
    assert_eq!(m["e2e_ms"]["count"].as_f64(), Some(completed), "{m}");
    assert!(m["ttft_ms"]["p50"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["e2e_ms"]["p99"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(
        m["generation_tokens"].as_f64(),
        r["total_output_tokens"].as_f64(),
        "{m}"
    );
    eprintln!(
        "[real-vllm] server metrics: {} samples in {duration:.1} s; TTFT p50 server {:.1} ms vs client {:.1} ms; E2E p50 server {:.1} ms vs client {:.1} ms",
        samples.len(),
        m["ttft_ms"]["p50"].as_f64().unwrap(),
        r["median_ttft_ms"].as_f64().unwrap(),
        m["e2e_ms"]["p50"].as_f64().unwrap(),
        r["median_e2el_ms"].as_f64().unwrap()
    );

    // The prefix workload: 2 prefixes of 300 tokens shared by 12 requests; vLLM's prefix
    // cache serves the repeats (whole blocks only: 128 tokens a block on the CPU build), and
    // the run reports its hit rate.
    let r = stack.bench(&[
        "--dataset-name",
        "prefix",
        "--prefix-len",
        "300",
        "--suffix-len",
        "16",
        "--prefix-groups",
        "2",
        "--requests",
        "12",
        "--concurrency",
        "2",
        "--output-len",
        "4",
    ]);
    assert_eq!(r["completed"], 12, "{r}");
    assert_eq!(r["prompt_tokens"]["method"], "server_tokenize", "{r}");
    let hit = r["server_metrics"]["prefix_cache_hit_rate"]
        .as_f64()
        .expect("vLLM exports prefix-cache counters");
    assert!(hit > 0.3, "the shared prefixes hit the cache: {hit}");
    eprintln!("[real-vllm] prefix workload (2 x 300-token prefixes, 12 requests): prefix-cache hit rate {:.1}%", hit * 100.0);

    // server logs: vLLM's own startup lines, as the supervisor captured them.
    let logs = String::from_utf8_lossy(
        &stack
            .cli(&["server", "logs", "real", "--lines", "50000"])
            .stdout,
    )
    .to_string();
    assert!(
        logs.contains("non-default args"),
        "vLLM's banner lines are in the log"
    );
    assert!(
        logs.contains(&format!(
            "Starting vLLM server on http://127.0.0.1:{}",
            stack.port
        )) || logs.contains("Application startup complete"),
        "{logs}"
    );

    // The gateway in front of it: both SDKs answered by vLLM, `vllm bench serve` through it
    // counted alike, a client killed mid-stream, then vLLM stopped under load.
    let gw = gateway::GatewayOnReal::start(stack.port, &env).await;
    gw.sdks_and_bench(&env).await;
    gw.killed_client_frees_vllm(stack.port).await;
    let load = gw.load();
    gw.until_vllm_answers(&load).await;

    // server stop: exit code 0, and none of vLLM's processes left.
    let t0 = Instant::now();
    let out = stack.cli(&["server", "stop", "real"]);
    let to_stop = t0.elapsed();
    gw.after_stop(load).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = stack.status();
    assert_eq!(st["state"], "exited");
    assert_eq!(st["exit_code"], 0, "vLLM exits 0 on SIGTERM: {st}");
    assert!(group_members(pgid).is_empty());
    for p in members {
        assert!(
            procfs::stat(p).is_none_or(|s| s.is_zombie()),
            "vLLM process {p} outlived stop"
        );
    }
    eprintln!(
        "[real-vllm] server stop: exit code 0 after {:.1} s; no process left",
        to_stop.as_secs_f64()
    );
}
