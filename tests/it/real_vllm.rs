//! Real-vLLM tier: the provider layer against the genuine server (CPU build, tiny model).
//! Skipped with a printed reason only when ANORAG_VLLM_BIN is unset; `.ci/run` sets it.
use crate::common;

use anorag::config;
use anorag::provider::{factory, ChatRequest, ErrorClass, StreamEvent};
use common::{free_port, group_members, wait_http_ok, RealVllmEnv};
use futures::StreamExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVED: &str = "qwen2_5_0_5b";

/// vLLM started directly, in its own process group; dropping it kills the whole group.
struct DirectServer {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl DirectServer {
    fn start(env: &RealVllmEnv, port: u16, log: std::path::PathBuf) -> Self {
        Self::start_with(env, port, log, SERVED, &[])
    }

    /// vLLM serving the tiny model as `served`, with `extra` arguments.
    fn start_with(
        env: &RealVllmEnv,
        port: u16,
        log: std::path::PathBuf,
        served: &str,
        extra: &[&str],
    ) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&env.bin)
            .args([
                "serve",
                &env.model,
                "--served-model-name",
                served,
                "--host",
                "127.0.0.1",
            ])
            .args(extra)
            .args([
                "--port",
                &port.to_string(),
                "--max-model-len",
                "2048",
                "--dtype",
                "float32",
            ])
            .arg("--enforce-eager")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("start vLLM");
        Self { child, port, log }
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// SIGTERM to the group, then wait for the exit status and for every member to go.
    fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(-self.pgid(), libc::SIGTERM) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "vLLM ignored SIGTERM for 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        while !group_members(self.pgid()).is_empty() && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            group_members(self.pgid()).is_empty(),
            "vLLM processes left behind"
        );
        status
    }
}

impl Drop for DirectServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(-self.pgid(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// Waits for a started server, or panics with the end of its log.
async fn ready(server: &mut DirectServer) {
    let health = format!("http://127.0.0.1:{}/health", server.port);
    let pid = server.child.id();
    let ready = wait_http_ok(&health, Duration::from_secs(300), || {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
    .await;
    if let Err(e) = ready {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let _ = server.child.kill();
        panic!(
            "{e}\n--- last vLLM log lines ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!(
        "[real-vllm] ready after {:.1} s",
        ready.unwrap().as_secs_f64()
    );
}

/// vLLM's CPU build serves the tiny model as an embedding model (`--runner pooling
/// --convert embed`): the gateway's embeddings in both dialects (float and base64) are
/// vLLM's own vectors, and the official clients get them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_through_the_gateway_from_real_vllm() {
    use base64::Engine;
    use serde_json::{json, Value};
    let Some(env) = RealVllmEnv::from_env("embeddings_through_the_gateway_from_real_vllm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = DirectServer::start_with(
        &env,
        free_port(),
        dir.path().join("vllm-embed.log"),
        "emb",
        &["--runner", "pooling", "--convert", "embed"],
    );
    ready(&mut server).await;
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      emb: {{base_url: {}, model: emb}}\ngateway:\n  listen: 127.0.0.1:0\n",
        server.base_url()
    );
    let g = common::gateway_from_yaml(&yaml).await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let http = http.clone();
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let inputs = json!(["hello world", "the gateway passes vectors through"]);
    let direct = post(
        format!("{}/embeddings", server.base_url()),
        json!({"model": "emb", "input": inputs}),
    )
    .await;
    let want: Vec<Vec<f64>> = direct["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(want.len(), 2);
    let same = |got: &[f64], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: dimensions");
        let worst = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{what}: off by {worst}");
    };
    let gw = format!("http://{}", g.addr);
    let v = post(
        format!("{gw}/v1/embeddings"),
        json!({"model": "emb", "input": inputs, "encoding_format": "float"}),
    )
    .await;
    assert_eq!(
        v["usage"]["prompt_tokens"],
        direct["usage"]["prompt_tokens"]
    );
    for (i, w) in want.iter().enumerate() {
        let got: Vec<f64> = serde_json::from_value(v["data"][i]["embedding"].clone()).unwrap();
        same(&got, w, "openai float");
    }
    let v = post(
        format!("{gw}/v1/embeddings"),
        json!({"model": "emb", "input": inputs, "encoding_format": "base64"}),
    )
    .await;
    for (i, w) in want.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["data"][i]["embedding"].as_str().unwrap())
            .unwrap();
        let got: Vec<f64> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        same(&got, w, "openai base64");
    }
    let v = post(
        format!("{gw}/api/embed"),
        json!({"model": "emb", "input": inputs}),
    )
    .await;
    for (i, w) in want.iter().enumerate() {
        let got: Vec<f64> = serde_json::from_value(v["embeddings"][i].clone()).unwrap();
        same(&got, w, "ollama");
    }
    eprintln!(
        "[real-vllm] embeddings through the gateway: {} dimensions, both dialects equal to vLLM's own",
        want[0].len()
    );
    if let Some(py) = std::env::var_os("ANORAG_GATEWAY_PY") {
        let so = common::gateway_clients(&py, "embeddings", &gw, "emb").await;
        eprintln!("[real-vllm] the openai and ollama clients' embeddings from vLLM:\n{so}");
    } else {
        common::skipped("real_vllm embeddings clients", "ANORAG_GATEWAY_PY is unset");
    }
    g.shutdown().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_layer_against_real_vllm() {
    let Some(env) = RealVllmEnv::from_env("provider_layer_against_real_vllm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = DirectServer::start(&env, free_port(), dir.path().join("vllm.log"));
    ready(&mut server).await;

    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      real: {{base_url: {}, model: {SERVED}}}\n    params: {{temperature: 0.0, max_tokens: 2048, top_p: 1.0, timeout: 60}}\n",
        server.base_url()
    );
    let cfg = config::load_str(&yaml, "real.yaml").unwrap();
    let router = factory::build(&cfg).await.unwrap();

    // Streamed chat through the factory: content arrives, usage matches what was asked for.
    let mut ttfts = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let req = ChatRequest {
            max_tokens: Some(32),
            ignore_eos: true,
            ..ChatRequest::prompt("Say hello in one word.")
        };
        let mut rs = router.chat_stream(None, &req).await.unwrap();
        assert_eq!(rs.served_by.route, "real");
        assert!(rs.attempts.is_empty());
        let (mut first, mut last, mut usage, mut events) = (None, None, None, 0);
        while let Some(ev) = rs.stream.next().await {
            match ev.expect("no stream error") {
                StreamEvent::Delta { at, .. } => {
                    first.get_or_insert(at);
                    last = Some(at);
                    events += 1;
                }
                StreamEvent::Usage { usage: u, .. } => usage = Some(u),
            }
        }
        let usage = usage.expect("vLLM sends the usage chunk when asked");
        assert_eq!(
            usage.completion_tokens, 32,
            "ignore_eos gives exactly max_tokens"
        );
        assert!(usage.prompt_tokens > 0);
        assert!(events >= 2);
        let (first, last) = (first.unwrap(), last.unwrap());
        ttfts.push((first - rs.started).as_secs_f64() * 1000.0);
        rates.push(31.0 / (last - first).as_secs_f64());
    }
    ttfts.sort_by(f64::total_cmp);
    rates.sort_by(f64::total_cmp);
    eprintln!(
        "[real-vllm] 5 streamed chats, 32 tokens each: TTFT median {:.1} ms (min {:.1}, max {:.1}); decode median {:.1} tok/s",
        ttfts[2], ttfts[0], ttfts[4], rates[2]
    );

    // Non-streamed.
    let r = router
        .chat(
            None,
            &ChatRequest {
                max_tokens: Some(8),
                ..ChatRequest::prompt("hi")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.response.usage.unwrap().completion_tokens, 8);

    // Models, health.
    let target = &router.route("real").unwrap().targets[0];
    assert_eq!(
        target.provider.list_models().await.unwrap(),
        vec![SERVED.to_string()]
    );
    target.provider.health().await.unwrap();

    // An unknown model is classified as not found, and tried once only.
    let f = router
        .chat_stream(
            None,
            &ChatRequest {
                model: Some("no-such-model".into()),
                ..ChatRequest::prompt("hi")
            },
        )
        .await
        .err()
        .expect("unknown model fails");
    assert_eq!(f.error.class, ErrorClass::NotFound, "{f}");
    assert_eq!(f.error.status, Some(404));
    assert_eq!(f.attempts.len(), 1, "{f}");

    // max_tokens beyond the context is the caller's error, not the server's.
    let f = router
        .chat(
            None,
            &ChatRequest {
                max_tokens: Some(100_000),
                ..ChatRequest::prompt("hi")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(f.error.class, ErrorClass::ContextLength, "{f}");

    drop(router);
    let status = server.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "vLLM exits 0 on SIGTERM: {status:?}"
    );
}
