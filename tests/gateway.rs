//! The gateway against the simulator: both dialects, the commit boundary, every fault
//! scenario of the reference note (what the client receives, in both dialects), cancellation
//! in each window, caps and auth, `/metrics`, the feed; and the official `openai` and `ollama`
//! Python clients where scripts/test installed them (ANORAG_GATEWAY_PY).
mod common;

use anorag::config;
use anorag::gateway::{self, Live, Running, Settings};
use anorag::provider::factory;
use anorag::sim::{self, Fault, Flavor, SimConfig, SimHandle};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A gateway on an ephemeral port over `routes` (the body of `llm.vllm_openai.routes`),
/// an optional Ollama route (`ollama_url`), and the extra `gateway:` and `router:` lines.
async fn gateway_with(routes: &str, ollama_url: Option<&str>, router: &str, gw: &str) -> Running {
    let ollama = ollama_url
        .map(|u| format!("  ollama: {{base_url: {u}, model: \"qwen2.5:0.5b\"}}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n{routes}\n{ollama}  router: {{max_wait_ms: 1000, {router}}}\ngateway:\n  listen: 127.0.0.1:0\n{gw}"
    );
    let cfg = config::load_str(&yaml, "gw.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let router = factory::build(&cfg).await.unwrap();
    let settings = Settings::from_config(&cfg, None).unwrap();
    gateway::run(settings, Live::new(&cfg, router).unwrap())
        .await
        .unwrap()
}

fn route(name: &str, s: &SimHandle, fallback: &[&str]) -> String {
    format!(
        "      {name}: {{base_url: {}, model: qwen2_5_0_5b, fallback: [{}]}}\n",
        s.base_url(),
        fallback.join(", ")
    )
}

async fn sim_with(faults: &[&str]) -> SimHandle {
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(5, 2, 6);
    for f in faults {
        cfg = cfg.fault(f.parse::<Fault>().unwrap());
    }
    sim::start(cfg).await.unwrap()
}

fn url(g: &Running, path: &str) -> String {
    format!("http://{}{path}", g.addr)
}

fn openai_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}], "stream": stream, "max_tokens": 6})
}

fn ollama_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}], "stream": stream})
}

/// What a client receives: status, headers, and the body's events (SSE data or NDJSON lines).
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    events: Vec<String>,
}

impl Got {
    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
    fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .or(v["message"]["content"].as_str())
                    .or(v["choices"][0]["message"]["content"].as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
    fn error(&self) -> Option<Value> {
        self.events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .find(|v| v.get("error").is_some())
    }
}

async fn post(g: &Running, path: &str, body: &Value) -> Got {
    let r = reqwest::Client::new()
        .post(url(g, path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let events = if path.starts_with("/v1") {
        let sse: Vec<String> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(String::from)
            .collect();
        if sse.is_empty() {
            vec![text]
        } else {
            sse
        }
    } else {
        text.lines().map(String::from).collect()
    };
    Got {
        status,
        headers,
        events,
    }
}

async fn metrics(g: &Running) -> String {
    reqwest::get(url(g, "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_dialects_answer_through_the_router() {
    let vllm = sim_with(&[]).await;
    let ol = sim::start(SimConfig::new(Flavor::Ollama).timing(5, 2, 6))
        .await
        .unwrap();
    let g = gateway_with(
        &route("tiny", &vllm, &[]),
        Some(&ol.root_url()),
        "",
        "  aliases: {gpt-4o-mini: tiny}\n",
    )
    .await;

    // OpenAI, streamed: role chunk, content, finish, usage only when asked, [DONE].
    let mut body = openai_body("gpt-4o-mini", true);
    body["stream_options"] = json!({"include_usage": true});
    let got = post(&g, "/v1/chat/completions", &body).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(got.header("x-accel-buffering"), Some("no"));
    assert_eq!(got.header("x-anorag-route"), Some("tiny"));
    assert_eq!(got.events.last().map(String::as_str), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&got.events[got.events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert_eq!(got.text().split_whitespace().count(), 6, "{:?}", got.events);
    let first: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(
        first["model"], "gpt-4o-mini",
        "the name the client asked for"
    );
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let got = post(&g, "/v1/chat/completions", &openai_body("tiny", true)).await;
    assert!(
        got.events.iter().all(|e| !e.contains("\"choices\":[]")),
        "no usage chunk unless asked"
    );

    // OpenAI, whole.
    let got = post(&g, "/v1/chat/completions", &openai_body("tiny", false)).await;
    let v: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["completion_tokens"], 6);

    // Ollama's dialect, to a vLLM route: NDJSON lines, the final one with Ollama's fields.
    let got = post(&g, "/api/chat", &ollama_body("tiny", true)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/x-ndjson"));
    let last: Value = serde_json::from_str(got.events.last().unwrap()).unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["eval_count"], 6);
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(last["total_duration"].as_u64().unwrap() > last["eval_duration"].as_u64().unwrap());
    assert_eq!(got.text().split_whitespace().count(), 6);

    // Ollama's generate, whole, to the Ollama route by Ollama's model name (tag or not).
    for model in ["qwen2.5:0.5b", "qwen2.5:0.5b:latest"] {
        let got = post(
            &g,
            "/api/generate",
            &json!({"model": model, "prompt": "hi", "stream": false}),
        )
        .await;
        assert_eq!(got.status, 200, "{model}");
        let v: Value = serde_json::from_str(&got.events[0]).unwrap();
        assert_eq!(v["done"], true);
        assert!(v["response"].as_str().unwrap().len() > 5);
        assert_eq!(got.header("x-anorag-route"), Some("ollama"));
    }
    // An OpenAI client answered by the Ollama route: translated both ways.
    let got = post(
        &g,
        "/v1/chat/completions",
        &openai_body("qwen2.5:0.5b", true),
    )
    .await;
    assert_eq!(got.header("x-anorag-route"), Some("ollama"));
    assert_eq!(got.events.last().map(String::as_str), Some("[DONE]"));

    // Names: every route, alias and served model.
    let models: Value = reqwest::get(url(&g, "/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "tiny",
            "ollama",
            "gpt-4o-mini",
            "qwen2_5_0_5b",
            "qwen2.5:0.5b"
        ]
    );
    let tags: Value = reqwest::get(url(&g, "/api/tags"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["models"].as_array().unwrap().len(), 5);
    let ver: Value = reqwest::get(url(&g, "/api/version"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ver["version"].is_string());
    let show = post(&g, "/api/show", &json!({"model": "gpt-4o-mini"})).await;
    assert_eq!(show.status, 200);

    // Embeddings through both dialects, each route's own endpoint behind them.
    let e = post(
        &g,
        "/v1/embeddings",
        &json!({"model": "tiny", "input": ["one two", "three"]}),
    )
    .await;
    let v: Value = serde_json::from_str(&e.events[0]).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let e2 = post(
        &g,
        "/api/embed",
        &json!({"model": "qwen2.5:0.5b", "input": ["one two", "three"]}),
    )
    .await;
    let v2: Value = serde_json::from_str(&e2.events[0]).unwrap();
    assert_eq!(
        v2["embeddings"][0], v["data"][0]["embedding"],
        "the same text embeds alike on both"
    );
    let b64 = post(
        &g,
        "/v1/embeddings",
        &json!({"model": "tiny", "input": "one two", "encoding_format": "base64"}),
    )
    .await;
    let v3: Value = serde_json::from_str(&b64.events[0]).unwrap();
    assert_eq!(
        v3["data"][0]["embedding"].as_str().map(str::len),
        Some(88),
        "16 floats in base64"
    );

    // Unknown models: a 404 in each dialect's shape that lists the names.
    let got = post(&g, "/v1/chat/completions", &openai_body("nope", false)).await;
    assert_eq!(got.status, 404);
    let v: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o-mini"));
    let got = post(&g, "/api/chat", &ollama_body("nope", false)).await;
    assert_eq!(got.status, 404);
    assert!(
        serde_json::from_str::<Value>(&got.events[0]).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("model 'nope' not found")
    );
    g.shutdown().await;
}

/// Before the first content every failure falls back invisibly; the headers say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_before_the_first_token_fall_back_invisibly() {
    let backup = sim_with(&[]).await;
    // A whole answer is streamed from upstream too, so every case applies to both.
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("503 persistent", vec!["status=503"], "overloaded"),
        ("connection refused", vec!["refuse"], "connect"),
        (
            "reset before the first token",
            vec!["reset,after=0"],
            "stream_broken",
        ),
        (
            "silent upstream",
            vec!["slow_headers,ms=30000"],
            "headers_timeout",
        ),
        (
            "malformed first chunk",
            vec!["malformed,after=0"],
            "stream_broken",
        ),
    ];
    for (what, faults, class) in cases {
        let primary = sim_with(&faults).await;
        let routes = route("primary", &primary, &["backup"]) + &route("backup", &backup, &[]);
        let g = gateway_with(
            &routes,
            None,
            "headers_timeout_ms: 300, first_token_timeout_ms: 300",
            "",
        )
        .await;
        for (path, body) in [
            ("/v1/chat/completions", openai_body("primary", true)),
            ("/v1/chat/completions", openai_body("primary", false)),
            ("/api/chat", ollama_body("primary", true)),
        ] {
            let got = post(&g, path, &body).await;
            assert_eq!(got.status, 200, "{what} {path}: {:?}", got.events);
            assert_eq!(got.header("x-anorag-route"), Some("backup"), "{what}");
            // Later requests may find the primary's circuit open after the first failures.
            assert!(
                got.header("x-anorag-failed")
                    .is_some_and(|f| f.contains(class) || f.contains("circuit_open")),
                "{what}: {:?}",
                got.header("x-anorag-failed")
            );
            assert!(got.error().is_none(), "{what}: {:?}", got.events);
            assert_eq!(
                got.text().split_whitespace().count(),
                6,
                "{what}: the whole answer, once"
            );
        }
        let m = metrics(&g).await;
        assert!(m.contains(&format!("anorag_gateway_fallbacks_total{{from=\"primary\",to=\"backup\",reason=\"{class}\"}}")), "{what}: {m}");
        g.shutdown().await;
    }
}

/// A slow first token (here 2 s against a 300 ms limit) is a failure before commit too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_falls_back() {
    let slow = sim::start(SimConfig::new(Flavor::Vllm).timing(2000, 2, 6))
        .await
        .unwrap();
    let backup = sim_with(&[]).await;
    let routes = route("slow", &slow, &["backup"]) + &route("backup", &backup, &[]);
    let g = gateway_with(&routes, None, "first_token_timeout_ms: 300", "").await;
    for (path, body) in [
        ("/v1/chat/completions", openai_body("slow", true)),
        ("/api/chat", ollama_body("slow", true)),
    ] {
        let got = post(&g, path, &body).await;
        assert_eq!(got.header("x-anorag-route"), Some("backup"));
        assert!(got
            .header("x-anorag-failed")
            .unwrap()
            .contains("first_token_timeout"));
    }
    g.shutdown().await;
}

/// After the first content a failure ends the stream with an error the client's SDK raises:
/// never a silent truncation, never a switch to another server mid-answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_after_commit_end_the_stream_in_band() {
    let backup = sim_with(&[]).await;
    for (what, fault) in [
        ("stream cut", "reset,after=3"),
        ("stream stalled", "stall,after=3"),
        ("malformed chunk", "malformed,after=3"),
        ("stream without [DONE]", "truncate,after=3"),
    ] {
        let primary = sim_with(&[fault]).await;
        let routes = route("primary", &primary, &["backup"]) + &route("backup", &backup, &[]);
        let g = gateway_with(&routes, None, "idle_timeout_ms: 300", "").await;
        let before = backup.stats().requests;
        let got = post(&g, "/v1/chat/completions", &openai_body("primary", true)).await;
        assert_eq!(got.status, 200, "{what}: committed");
        assert_eq!(got.header("x-anorag-route"), Some("primary"));
        let err = got
            .error()
            .unwrap_or_else(|| panic!("{what}: no in-band error: {:?}", got.events));
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("broke off"),
            "{what}: {err}"
        );
        assert!(
            !got.events.iter().any(|e| e == "[DONE]"),
            "{what}: no [DONE] after an error"
        );
        assert_eq!(
            got.text().split_whitespace().count(),
            3,
            "{what}: the 3 tokens sent before, nothing else"
        );
        let got = post(&g, "/api/chat", &ollama_body("primary", true)).await;
        let last: Value = serde_json::from_str(got.events.last().unwrap()).unwrap();
        assert!(
            last["error"].is_string(),
            "{what}: Ollama's error line: {:?}",
            got.events
        );
        assert!(
            !got.events.iter().any(|e| e.contains("\"done\":true")),
            "{what}"
        );
        assert_eq!(
            backup.stats().requests,
            before,
            "{what}: no mid-stream switch"
        );
        let m = metrics(&g).await;
        assert!(m.contains("status=\"200\""), "{m}");
        g.shutdown().await;
    }
}

/// When every target fails, the client gets the upstream's status in its dialect, with
/// `Retry-After` forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_statuses_reach_the_client_with_retry_after() {
    // 429 with Retry-After, nowhere to fall back: 429 and the same Retry-After.
    let limited = sim_with(&["status=429,retry_after=7"]).await;
    let g = gateway_with(
        &route("limited", &limited, &[]),
        None,
        "max_attempts: 1",
        "",
    )
    .await;
    let got = post(&g, "/v1/chat/completions", &openai_body("limited", false)).await;
    assert_eq!(got.status, 429);
    assert_eq!(got.header("retry-after"), Some("7"));
    let v: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let got = post(&g, "/api/chat", &ollama_body("limited", true)).await;
    assert_eq!(got.status, 429);
    assert_eq!(got.header("retry-after"), Some("7"));
    assert!(serde_json::from_str::<Value>(&got.events[0]).unwrap()["error"].is_string());
    g.shutdown().await;

    // 429 without Retry-After: still a 429.
    let limited = sim_with(&["status=429"]).await;
    let g = gateway_with(
        &route("limited", &limited, &[]),
        None,
        "max_attempts: 1",
        "",
    )
    .await;
    let got = post(&g, "/v1/chat/completions", &openai_body("limited", true)).await;
    assert_eq!(got.status, 429);
    g.shutdown().await;

    // 500 once: the router tries again and the client sees only the answer.
    let once = sim_with(&["status=500,count=1"]).await;
    let g = gateway_with(&route("once", &once, &[]), None, "", "").await;
    let got = post(&g, "/v1/chat/completions", &openai_body("once", true)).await;
    assert_eq!(got.status, 200, "{:?}", got.events);
    assert_eq!(got.header("x-anorag-attempts"), Some("2"));
    g.shutdown().await;

    // Context length: the caller's fault, no retry, no fallback; vLLM's words reach it.
    let mut small = SimConfig::new(Flavor::Vllm).timing(5, 2, 6);
    small.max_model_len = 8;
    let small = sim::start(small).await.unwrap();
    let backup = sim_with(&[]).await;
    let routes = route("small", &small, &["backup"]) + &route("backup", &backup, &[]);
    let g = gateway_with(&routes, None, "", "").await;
    let long = json!({"model": "small", "messages": [{"role": "user", "content": "many words in this prompt that is far too long"}]});
    let got = post(&g, "/v1/chat/completions", &long).await;
    assert_eq!(got.status, 400);
    assert!(
        got.events[0].contains("maximum context length"),
        "{:?}",
        got.events
    );
    assert_eq!(backup.stats().requests, 0);
    g.shutdown().await;
}

/// A flapping primary (half its answers 503): every request is answered, the fallback counted,
/// and the tokens counted on the route that served them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_primary_loses_no_request_and_tokens_count_where_served() {
    let primary = sim_with(&["status=503,rate=0.5"]).await;
    let backup = sim_with(&[]).await;
    let routes = route("primary", &primary, &["backup"]) + &route("backup", &backup, &[]);
    let g = gateway_with(&routes, None, "circuit: {failures: 1000}", "").await;
    let mut served = std::collections::BTreeMap::<String, u64>::new();
    let mut tokens = 0;
    for _ in 0..20 {
        let mut body = openai_body("primary", true);
        body["stream_options"] = json!({"include_usage": true});
        let got = post(&g, "/v1/chat/completions", &body).await;
        assert_eq!(got.status, 200);
        *served
            .entry(got.header("x-anorag-route").unwrap().to_string())
            .or_default() += 6;
        tokens += 6;
    }
    assert!(served.get("backup").copied().unwrap_or(0) > 0, "{served:?}");
    assert_eq!(served.values().sum::<u64>(), tokens);
    let m = metrics(&g).await;
    for (r, n) in &served {
        assert!(
            m.contains(&format!(
                "anorag_gateway_tokens_total{{route=\"{r}\",kind=\"completion\"}} {n}"
            )),
            "{r} {n}: {m}"
        );
    }
    let fallbacks: u64 = m
        .lines()
        .filter(|l| l.starts_with("anorag_gateway_fallbacks_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(fallbacks * 6, served["backup"], "{m}");
    g.shutdown().await;
}

/// Waits until `f` holds, as a guard against a hang (not a timing assertion).
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metric(g: &Running, line_start: &str) -> f64 {
    metrics(g)
        .await
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A client that goes away drops its upstream request in every window, and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_cancels_upstream_in_every_window() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // One raw connection per request, closed at the moment under test.
    async fn open(g: &Running, body: &Value) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
        let b = body.to_string();
        let req = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
        s.write_all(req.as_bytes()).await.unwrap();
        s
    }
    let slow_headers = sim_with(&["slow_headers,ms=60000"]).await;
    let slow_first = sim::start(SimConfig::new(Flavor::Vllm).timing(60_000, 2, 6))
        .await
        .unwrap();
    let slow_stream = sim::start(SimConfig::new(Flavor::Vllm).timing(5, 200, 50))
        .await
        .unwrap();
    let routes = route("headers", &slow_headers, &[])
        + &route("first", &slow_first, &[])
        + &route("stream", &slow_stream, &[]);
    let g = gateway_with(
        &routes,
        None,
        "headers_timeout_ms: 120000, first_token_timeout_ms: 120000",
        "  max_in_flight: 2\n",
    )
    .await;

    // Waiting for headers: the simulator sees its handler dropped.
    let c = open(&g, &openai_body("headers", true)).await;
    until("the request reached the simulator", || {
        slow_headers.stats().requests == 1
    })
    .await;
    drop(c);
    until("the simulator saw the client leave", || {
        slow_headers.stats().abandoned == 1
    })
    .await;

    // Waiting for the first token, streamed and not: the generation is aborted.
    for stream in [true, false] {
        let before = slow_first.stats();
        let c = open(&g, &openai_body("first", stream)).await;
        until("generating", || {
            slow_first.stats().active == before.active + 1
        })
        .await;
        drop(c);
        until("aborted", || slow_first.stats().active == before.active).await;
        assert_eq!(slow_first.stats().completed, 0);
    }

    // Streaming: read a little of the answer, then leave.
    let mut c = open(&g, &openai_body("stream", true)).await;
    let mut buf = vec![0u8; 4096];
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 3 {
        let n = c.read(&mut buf).await.unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    until("streaming", || slow_stream.stats().active == 1).await;
    drop(c);
    until("the stream was aborted", || {
        slow_stream.stats().aborted == 1 && slow_stream.stats().active == 0
    })
    .await;

    // Queued: both slots held, a third request waits; its client leaves; nothing reaches a server.
    let a = open(&g, &openai_body("first", true)).await;
    let b = open(&g, &openai_body("first", true)).await;
    until("both slots held", || slow_first.stats().active == 2).await;
    let before = slow_first.stats().requests;
    let queued = open(&g, &openai_body("stream", true)).await;
    let mut q = 0.0;
    for _ in 0..500 {
        q = metric(&g, "anorag_gateway_queued ").await;
        if q == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(q, 1.0, "the third request waits");
    drop(queued);
    let mut cancelled_queued = 0.0;
    for _ in 0..500 {
        cancelled_queued = metric(
            &g,
            "anorag_gateway_client_cancellations_total{stage=\"queued\"}",
        )
        .await;
        if cancelled_queued == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cancelled_queued, 1.0);
    assert_eq!(slow_first.stats().requests, before);
    assert_eq!(
        slow_stream.stats().requests,
        1,
        "the queued request never reached a server"
    );
    drop((a, b));
    until("slots free", || slow_first.stats().active == 0).await;
    let upstream = metric(
        &g,
        "anorag_gateway_client_cancellations_total{stage=\"waiting_upstream\"}",
    )
    .await;
    let streaming = metric(
        &g,
        "anorag_gateway_client_cancellations_total{stage=\"streaming\"}",
    )
    .await;
    assert!(
        upstream >= 3.0,
        "headers, first token (x2), and the two held: {upstream}"
    );
    assert_eq!(streaming, 1.0);
    g.shutdown().await;
}
