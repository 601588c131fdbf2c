//! The gateway in front of the real vLLM (a part of real_vllm_stack's one test, while its
//! server runs): the official clients answered by vLLM, `vllm bench serve` through the
//! gateway counted alike by vLLM's own counters, a client killed mid-stream freeing vLLM,
//! and vLLM stopped under load with nothing lost.
use super::common::{self, RealVllmEnv};
use anorag::gateway::Running;
use anorag::sim::{self, Flavor, SimConfig, SimHandle};
use anorag::telemetry::vllm_metrics::Scrape;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVED: &str = "qwen2_5_0_5b";

pub struct GatewayOnReal {
    g: Running,
    backup: SimHandle,
    base: String,
}

/// vLLM's `/metrics` on `port`, read now.
pub async fn scrape(port: u16) -> Scrape {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Scrape::parse(&text, Some(SERVED), Instant::now())
}

/// What the load saw while vLLM was stopped under it.
#[derive(Default)]
pub struct Tally {
    sent: AtomicU64,
    ok_real: AtomicU64,
    ok_backup: AtomicU64,
    in_band_error: AtomicU64,
    http_error: AtomicU64,
    stop: AtomicBool,
}

pub struct Load {
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl GatewayOnReal {
    pub async fn start(port: u16, _env: &RealVllmEnv) -> Self {
        let backup = sim::start(SimConfig::new(Flavor::Ollama).timing(5, 2, 8))
            .await
            .unwrap();
        let yaml = format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      real: {{base_url: http://127.0.0.1:{port}/v1, model: {SERVED}, fallback: [ollama]}}\n    params: {{temperature: 0.0, timeout: 120}}\n  ollama: {{base_url: {}, model: \"qwen2.5:0.5b\"}}\ngateway:\n  listen: 127.0.0.1:0\n",
            backup.root_url()
        );
        let g = common::gateway_from_yaml(&yaml).await;
        let base = format!("http://{}", g.addr);
        Self { g, backup, base }
    }

    async fn metric(&self, prefix: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn sdks_and_bench(&self, env: &RealVllmEnv) {
        // The official clients, answered by vLLM (nothing reached the fallback).
        if let Some(py) = std::env::var_os("ANORAG_GATEWAY_PY") {
            let so = common::gateway_clients(&py, "basic", &self.base, "real").await;
            assert_eq!(
                self.backup.stats().requests,
                0,
                "vLLM answered every request: {so}"
            );
            assert!(
                self.metric("anorag_gateway_tokens_total{route=\"real\",kind=\"completion\"}")
                    .await
                    > 0.0
            );
            eprintln!("[real-vllm] the openai and ollama clients through the gateway, answered by vLLM:\n{so}");
        } else {
            super::common::skipped("real_vllm gateway clients", "ANORAG_GATEWAY_PY is unset");
        }
        // `vllm bench serve` through the gateway and directly: the same completed count and
        // token totals, by its own report and by vLLM's counters.
        let port: u16 = self.g.shared.live().router.route("real").unwrap().targets[0]
            .provider
            .base_url()
            .trim_end_matches("/v1")
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Chat, and raw completions (`vllm bench serve`'s default backend).
        for (backend, endpoint) in [
            ("openai-chat", "/v1/chat/completions"),
            ("vllm", "/v1/completions"),
        ] {
            let mut runs = Vec::new();
            for (name, url) in [
                ("gateway", self.base.clone()),
                ("direct", format!("http://127.0.0.1:{port}")),
            ] {
                let before = scrape(port).await;
                let out = tokio::process::Command::new(&env.bin)
                    .args([
                        "bench",
                        "serve",
                        "--backend",
                        backend,
                        "--base-url",
                        &url,
                        "--endpoint",
                        endpoint,
                        "--model",
                        SERVED,
                        "--tokenizer",
                        &env.model,
                        "--dataset-name",
                        "random",
                        "--random-input-len",
                        "32",
                        "--random-output-len",
                        "8",
                        "--random-range-ratio",
                        "0",
                        "--num-prompts",
                        "10",
                        "--max-concurrency",
                        "2",
                        "--ignore-eos",
                        "--seed",
                        "3",
                        "--save-result",
                        "--save-detailed",
                        "--result-dir",
                        dir.path().to_str().unwrap(),
                        "--result-filename",
                        &format!("{name}-{backend}.json"),
                    ])
                    .env("VLLM_LOGGING_LEVEL", "WARNING")
                    .output()
                    .await
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let after = scrape(port).await;
                let r: Value = serde_json::from_str(
                    &std::fs::read_to_string(dir.path().join(format!("{name}-{backend}.json")))
                        .unwrap(),
                )
                .unwrap();
                let prompt =
                    after.prompt_tokens_total.unwrap() - before.prompt_tokens_total.unwrap();
                let generated = after.generation_tokens_total.unwrap()
                    - before.generation_tokens_total.unwrap();
                eprintln!(
                "[real-vllm] vllm bench serve {name} {endpoint}: completed {}, input {}, output {}; vLLM counted prompt +{prompt}, generation +{generated}",
                r["completed"], r["total_input_tokens"], r["total_output_tokens"]
            );
                runs.push((
                    r["completed"].clone(),
                    r["total_output_tokens"].clone(),
                    prompt,
                    generated,
                ));
            }
            assert_eq!(
            runs[0], runs[1],
            "{endpoint} through the gateway as direct: (completed, output, vLLM prompt, vLLM generation)"
        );
            assert_eq!(runs[0].0, json!(10));
        }
        // vLLM's own client's files make reports: one run, and gateway against direct.
        let file = |n: &str| dir.path().join(format!("{n}-openai-chat.json"));
        let one = anorag::report::load::read(&file("direct")).unwrap();
        assert_eq!(one.kind(), "vllm bench serve run");
        let html = anorag::report::html(&[one], &anorag::report::Options::default()).unwrap();
        for id in ["hist-ttft", "cdf-itl", "hist-e2el", "timeline"] {
            assert!(
                html.contains(&format!("<svg id=\"chart-{id}\"")),
                "no chart {id}"
            );
        }
        let both = [file("gateway"), file("direct")];
        let out = dir.path().join("gateway-vs-direct.html");
        anorag::report::write(&both, &out, false, None).unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(
            html.contains("id=\"table-cmp-ratios\"")
                && html.contains("<svg id=\"chart-cmp-cdf-ttft\"")
        );
        eprintln!(
            "[real-vllm] reports of vllm bench serve's own files: {} bytes for the comparison",
            html.len()
        );
    }

    /// A client killed mid-stream: vLLM's own running count goes back to 0.
    pub async fn killed_client_frees_vllm(&self, port: u16) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = json!({"model": "real", "messages": [{"role": "user", "content": "count"}], "stream": true, "max_tokens": 1500, "ignore_eos": true}).to_string();
        let mut c = tokio::net::TcpStream::connect(self.g.addr).await.unwrap();
        c.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut seen = 0;
        while seen < 5 {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen += String::from_utf8_lossy(&buf[..n]).matches("data: ").count();
        }
        let running = scrape(port).await.running.unwrap_or(0.0);
        drop(c);
        let killed = Instant::now();
        // A guard against a hang; the time is measured and said, not asserted.
        let deadline = killed + Duration::from_secs(60);
        loop {
            if scrape(port).await.running == Some(0.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "vLLM kept generating for a client that left"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "[real-vllm] a client killed mid-stream through the gateway: vLLM's running {running} -> 0 in {:.2} s; cancellations {}",
            killed.elapsed().as_secs_f64(),
            self.metric("anorag_gateway_client_cancellations_total").await
        );
    }

    /// Four clients streaming in a loop until told to stop; each request's outcome counted.
    pub fn load(&self) -> Load {
        let tally = Arc::new(Tally::default());
        let tasks = (0..4)
            .map(|_| {
                let (t, url) = (tally.clone(), format!("{}/v1/chat/completions", self.base));
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !t.stop.load(Ordering::Relaxed) {
                        t.sent.fetch_add(1, Ordering::Relaxed);
                        let body = json!({"model": "real", "messages": [{"role": "user", "content": "hello"}], "stream": true, "max_tokens": 64});
                        let r = match http.post(&url).json(&body).send().await {
                            Ok(r) => r,
                            Err(_) => {
                                t.http_error.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        };
                        let status = r.status().as_u16();
                        let route = r.headers().get("x-anorag-route").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let text = r.text().await.unwrap_or_default();
                        let n = if status != 200 {
                            &t.http_error
                        } else if text.contains("data: {\"error\"") {
                            &t.in_band_error
                        } else if text.ends_with("data: [DONE]\n\n") && route == "real" {
                            &t.ok_real
                        } else if text.ends_with("data: [DONE]\n\n") {
                            &t.ok_backup
                        } else {
                            &t.http_error
                        };
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load { tally, tasks }
    }

    /// Returns once vLLM has answered a few of the load's requests.
    pub async fn until_vllm_answers(&self, load: &Load) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while load.tally.ok_real.load(Ordering::Relaxed) < 4 {
            assert!(
                Instant::now() < deadline,
                "vLLM answered none of the load's requests"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// vLLM is gone: the load goes on through the fallback; every request is accounted for.
    pub async fn after_stop(&self, load: Load) {
        let backup_before = self.backup.stats().requests;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.backup.stats().requests < backup_before + 8 {
            assert!(
                Instant::now() < deadline,
                "the fallback served nothing after vLLM stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        load.tally.stop.store(true, Ordering::Relaxed);
        for t in load.tasks {
            t.await.unwrap();
        }
        let t = &load.tally;
        let (sent, real, backup, in_band, http) = (
            t.sent.load(Ordering::Relaxed),
            t.ok_real.load(Ordering::Relaxed),
            t.ok_backup.load(Ordering::Relaxed),
            t.in_band_error.load(Ordering::Relaxed),
            t.http_error.load(Ordering::Relaxed),
        );
        eprintln!("[real-vllm] vLLM stopped under 4 streaming clients through the gateway: {sent} sent: {real} answered by vLLM, {backup} by the fallback, {in_band} ended with an in-band error after commit, {http} other");
        assert_eq!(
            sent,
            real + backup + in_band + http,
            "none lost from the count"
        );
        assert_eq!(
            http, 0,
            "no request failed outright: before commit everything fell back"
        );
        assert!(backup >= 8, "the fallback took over");
        assert!(real >= 4, "vLLM answered before it stopped");
        let fallbacks = self
            .metric("anorag_gateway_fallbacks_total{from=\"real\",to=\"ollama\"")
            .await;
        assert!(
            fallbacks >= backup as f64,
            "{fallbacks} fallbacks counted for {backup}"
        );
    }
}
