//! The gateway against the simulator: both dialects, the commit boundary, every fault
//! scenario of the reference note (what the client receives, in both dialects), cancellation
//! in each window, caps and auth, `/metrics`, the feed; and the official `openai` and `ollama`
//! Python clients where scripts/test installed them (ANORAG_GATEWAY_PY).
use crate::common;

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
    common::gateway_from_yaml(&yaml).await
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

/// One simulator with its faults as route `name`, nowhere to fall back, behind a gateway.
async fn alone(name: &str, faults: &[&str], router: &str, gw: &str) -> (SimHandle, Running) {
    let s = sim_with(faults).await;
    let g = gateway_with(&route(name, &s, &[]), None, router, gw).await;
    (s, g)
}

/// A primary simulator that falls back to a backup, each with its faults, behind a gateway
/// with these router and gateway settings.
async fn primary_and_backup(
    primary: &[&str],
    backup: &[&str],
    router: &str,
    gw: &str,
) -> (SimHandle, SimHandle, Running) {
    let (p, b) = (sim_with(primary).await, sim_with(backup).await);
    let routes = route("primary", &p, &["backup"]) + &route("backup", &b, &[]);
    let g = gateway_with(&routes, None, router, gw).await;
    (p, b, g)
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
                    .or(v["choices"][0]["text"].as_str())
                    .or(v["response"].as_str())
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

/// `/v1/completions` sends its prompt as it is (no chat template): to a vLLM route's
/// `/v1/completions`, and to an Ollama route as `generate` with `raw`; Ollama's raw
/// `generate` reaches a vLLM route's `/v1/completions` the same way. Answers in the client's
/// shape, streamed and whole, with usage when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_raw_prompts_in_both_directions() {
    let vllm = sim_with(&[]).await;
    let down = sim_with(&["refuse"]).await;
    let ol = sim::start(SimConfig::new(Flavor::Ollama).timing(5, 2, 6))
        .await
        .unwrap();
    let g = gateway_with(
        &(route("tiny", &vllm, &[]) + &route("down", &down, &["ollama"])),
        Some(&ol.root_url()),
        "",
        "",
    )
    .await;
    let ask = |model: &str, stream: bool| json!({"model": model, "prompt": "def fib(n):", "max_tokens": 6, "stream": stream, "stop": ["\n\n"]});

    // Streamed, to vLLM's /v1/completions: text chunks, the finish reason, usage when asked.
    let mut body = ask("tiny", true);
    body["stream_options"] = json!({"include_usage": true});
    let got = post(&g, "/v1/completions", &body).await;
    assert_eq!(got.status, 200, "{:?}", got.events);
    let sent = vllm.last_request().unwrap();
    assert_eq!(sent["prompt"], "def fib(n):", "{sent}");
    assert!(sent.get("messages").is_none(), "no chat template: {sent}");
    assert_eq!(sent["stop"], json!(["\n\n"]));
    let chunks: Vec<Value> = got
        .events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    assert!(
        chunks.iter().all(|c| c["object"] == "text_completion"),
        "{chunks:?}"
    );
    assert_eq!(got.text().split_whitespace().count(), 6, "{:?}", got.events);
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "length"));
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 6);
    assert_eq!(got.events.last().map(String::as_str), Some("[DONE]"));

    // Whole.
    let got = post(&g, "/v1/completions", &ask("tiny", false)).await;
    let v: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(v["object"], "text_completion", "{v}");
    assert_eq!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        6
    );
    assert_eq!(v["usage"]["completion_tokens"], 6);

    // A completion that falls back to Ollama: `generate` with `raw`, answered as a completion.
    let got = post(&g, "/v1/completions", &ask("down", true)).await;
    assert_eq!(got.status, 200, "{:?}", got.events);
    assert_eq!(got.header("x-anorag-route"), Some("ollama"));
    let sent = ol.last_request().unwrap();
    assert_eq!(
        (&sent["prompt"], &sent["raw"]),
        (&json!("def fib(n):"), &json!(true)),
        "{sent}"
    );
    assert_eq!(got.text().split_whitespace().count(), 6, "{:?}", got.events);

    // Ollama's raw generate, to the vLLM route: its /v1/completions.
    let got = post(
        &g,
        "/api/generate",
        &json!({"model": "tiny", "prompt": "[INST] hi [/INST]", "raw": true, "stream": false}),
    )
    .await;
    assert_eq!(got.status, 200, "{:?}", got.events);
    assert_eq!(vllm.last_request().unwrap()["prompt"], "[INST] hi [/INST]");
    let v: Value = serde_json::from_str(&got.events[0]).unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(
        v["response"].as_str().unwrap().split_whitespace().count(),
        6
    );
    g.shutdown().await;
}

/// The live feed tells each step of a request as it happens: its start, each attempt and
/// how it failed, the headers, the fallback, the first token, and its end with the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_tells_each_step_of_a_request() {
    use futures::StreamExt;
    let (_primary, _backup, g) =
        primary_and_backup(&["refuse"], &[], "", "  drain_timeout_s: 600\n").await;
    let got = post(&g, "/v1/chat/completions", &openai_body("primary", true)).await;
    assert_eq!(got.status, 200);
    let id: u64 = got.header("x-anorag-request-id").unwrap().parse().unwrap();
    // A late reader gets the recent events first.
    let r = reqwest::get(url(&g, "/anorag/events")).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut buf = Vec::new();
    let mut mine: Vec<Value> = Vec::new();
    let read = async {
        while !mine.iter().any(|e| e["type"] == "end") {
            buf.extend_from_slice(&body.next().await.unwrap().unwrap());
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let e: Value = serde_json::from_slice(&line).unwrap();
                if e["id"] == id {
                    mine.push(e);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the feed never told the request's end");
    let types: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "start",
            "trying",
            "attempt",
            "trying",
            "stage",
            "first_token",
            "fallback",
            "end"
        ],
        "{mine:#?}"
    );
    assert_eq!(mine[1]["route"], "primary");
    assert_eq!(mine[1]["attempt"], 1);
    assert_eq!(mine[2]["class"], "connect");
    assert_eq!(mine[3]["route"], "backup");
    assert_eq!(mine[3]["attempt"], 2);
    assert_eq!(mine[4]["stage"], "waiting_first_token");
    assert_eq!(mine[6]["reason"], "connect");
    assert_eq!(mine[6]["attempt"], 2);
    assert_eq!(mine[7]["chain"], "primary x connect -> backup ok");
    assert_eq!(mine[7]["outcome"], "ok");
    // A reader does not hold a graceful stop up: its feed ends with the drain's notice.
    let stop = tokio::spawn(g.shutdown());
    let mut rest = String::new();
    let drained = async {
        while let Some(b) = body.next().await {
            rest.push_str(&String::from_utf8_lossy(&b.unwrap()));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), drained)
        .await
        .expect("the feed outlived the drain's start");
    assert!(rest.contains("draining: no new connections"), "{rest}");
    tokio::time::timeout(Duration::from_secs(120), stop)
        .await
        .expect("the gateway stopped")
        .unwrap();
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
    let (_limited, g) = alone(
        "limited",
        &["status=429,retry_after=7"],
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
    let (_limited, g) = alone("limited", &["status=429"], "max_attempts: 1", "").await;
    let got = post(&g, "/v1/chat/completions", &openai_body("limited", true)).await;
    assert_eq!(got.status, 429);
    g.shutdown().await;

    // 500 once: the router tries again and the client sees only the answer.
    let (_once, g) = alone("once", &["status=500,count=1"], "", "").await;
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
    let (_primary, _backup, g) = primary_and_backup(
        &["status=503,rate=0.5"],
        &[],
        "circuit: {failures: 1000}",
        "",
    )
    .await;
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

/// Waits until a metric reads `want` (a guard against a hang, not a timing assertion).
async fn until_metric(g: &Running, line_start: &str, want: f64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(g, line_start).await != want {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    until_metric(&g, "anorag_gateway_queued ", 1.0, "the third request waits").await;
    drop(queued);
    until_metric(
        &g,
        "anorag_gateway_client_cancellations_total{stage=\"queued\"}",
        1.0,
        "the queued client's leaving counted",
    )
    .await;
    assert_eq!(slow_first.stats().requests, before);
    assert_eq!(
        slow_stream.stats().requests,
        1,
        "the queued request never reached a server"
    );
    drop((a, b));
    until("slots free", || slow_first.stats().active == 0).await;
    let stage = |s: &str| format!("anorag_gateway_client_cancellations_total{{stage=\"{s}\"}}");
    until_metric(
        &g,
        &stage("waiting_first_token"),
        4.0,
        "first token (x2) and the two held",
    )
    .await;
    assert_eq!(metric(&g, &stage("waiting_headers")).await, 1.0);
    assert_eq!(metric(&g, &stage("streaming")).await, 1.0);
    g.shutdown().await;
}

/// Caps and auth: nothing unbounded, every refusal in the client's dialect naming what is at
/// fault, and a key's value never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_auth_and_bad_input_are_refused_in_the_dialect() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = sim_with(&[]).await;
    let slow = sim::start(SimConfig::new(Flavor::Vllm).timing(5, 100, 40))
        .await
        .unwrap();
    let routes = route("tiny", &s, &[]) + &route("slow", &slow, &[]);
    std::env::set_var(
        "ANORAG_TEST_GW_KEYS",
        "rag=sk-test-rag-123, batch=sk-test-batch-456",
    );
    let g = gateway_with(
        &routes,
        None,
        "",
        "  keys_env: ANORAG_TEST_GW_KEYS\n  max_body_bytes: 2000\n  client_timeout_ms: 300\n  max_in_flight: 1\n  max_queue: 0\n",
    )
    .await;
    let http = reqwest::Client::new();
    let send = |path: &str, key: Option<&str>, body: Value| {
        let mut r = http.post(url(&g, path)).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    // No key, a wrong key: 401 in each dialect; the right key: answered.
    for (path, body) in [
        ("/v1/chat/completions", openai_body("tiny", false)),
        ("/api/chat", ollama_body("tiny", false)),
    ] {
        for key in [None, Some("sk-wrong")] {
            let r = send(path, key, body.clone()).await.unwrap();
            assert_eq!(r.status(), 401, "{path} {key:?}");
            let v: Value = r.json().await.unwrap();
            assert!(v["error"].is_object() == path.starts_with("/v1"), "{v}");
        }
        let r = send(path, Some("sk-test-batch-456"), body.clone())
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    assert_eq!(
        reqwest::get(url(&g, "/health")).await.unwrap().status(),
        200,
        "health needs no key"
    );
    assert_eq!(
        reqwest::get(url(&g, "/metrics")).await.unwrap().status(),
        401
    );
    let feed: Value = http
        .get(url(&g, "/anorag/stats"))
        .bearer_auth("sk-test-rag-123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(feed["keys"], true);
    let m = http
        .get(url(&g, "/metrics"))
        .bearer_auth("sk-test-rag-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("anorag_gateway_refused_total{reason=\"unauthorized\"} 5"),
        "{m}"
    );
    assert!(!m.contains("sk-test"), "no key in the metrics");

    // An oversize body: 413, before routing.
    let big = json!({"model": "tiny", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let r = send("/v1/chat/completions", Some("sk-test-rag-123"), big.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("gateway.max_body_bytes"));
    let r = send("/api/chat", Some("sk-test-rag-123"), big)
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Not JSON, and JSON of the wrong shape: 400 naming the field.
    let r = http
        .post(url(&g, "/v1/chat/completions"))
        .bearer_auth("sk-test-rag-123")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "body", "{v}");
    let r = send(
        "/v1/chat/completions",
        Some("sk-test-rag-123"),
        json!({"model": "tiny", "messages": [{"role": "user"}], "max_tokens": -3}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "max_tokens", "{v}");
    let r = send(
        "/api/chat",
        Some("sk-test-rag-123"),
        json!({"model": "tiny", "messages": "hi"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("messages"), "{v}");

    // A slow client: the body never completes; 408 after the client deadline.
    let mut c = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test-rag-123\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\"").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(30), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    // A request head that never ends: the connection is closed.
    let mut c = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(30), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    let got = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || got.starts_with("HTTP/1.1 408"), "{got}");

    // At capacity with no queue: 429 with Retry-After, in the dialect.
    let hold = tokio::spawn({
        let (u, h) = (url(&g, "/v1/chat/completions"), http.clone());
        async move {
            h.post(u)
                .bearer_auth("sk-test-rag-123")
                .json(&openai_body("slow", true))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    until("the slot is held", || slow.stats().active == 1).await;
    let r = send(
        "/api/chat",
        Some("sk-test-rag-123"),
        ollama_body("tiny", false),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("gateway.max_in_flight"),
        "{v}"
    );
    assert!(hold.await.unwrap().ends_with("data: [DONE]\n\n"));
    g.shutdown().await;
    std::env::remove_var("ANORAG_TEST_GW_KEYS");
}

#[test]
fn an_address_others_can_reach_needs_client_keys() {
    let yaml = "llm:\n  provider: builtin\n  builtin: {}\ngateway:\n  listen: 0.0.0.0:8090\n";
    let e = config::load_str(yaml, "gw.yaml").unwrap_err().to_string();
    assert!(e.contains("gw.yaml:5:11: gateway.listen"), "{e}");
    assert!(e.contains("keys_env"), "{e}");
    let cfg = config::load_str("llm:\n  provider: builtin\n  builtin: {}\n", "gw.yaml").unwrap();
    let e = Settings::from_config(&cfg, Some("0.0.0.0:8090")).unwrap_err();
    assert!(e.starts_with("--listen:"), "{e}");
    let e = Settings::from_config(&cfg, Some("nonsense")).unwrap_err();
    assert!(e.starts_with("--listen:"), "{e}");
    let e = config::load_str(
        "llm:\n  provider: builtin\n  builtin: {}\ngateway:\n  aliases: {gpt: nope}\n",
        "gw.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gw.yaml:5:18: gateway.aliases.gpt: unknown route `nope`"),
        "{e}"
    );
}

/// Any bytes as a request body: a well-formed answer or error, never a panic or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_body_gets_a_well_formed_answer() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let (_s, g) = alone("tiny", &[], "", "").await;
    let http = reqwest::Client::new();
    let mut runner = TestRunner::default();
    let bodies = proptest::prop_oneof![
        proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        "\\PC{0,200}".prop_map(String::into_bytes),
        proptest::sample::select(vec![
            r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#.to_string(),
            r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true}"#
                .to_string(),
            r#"{"model":"tiny","messages":null,"stream":"yes"}"#.to_string(),
            r#"{"model":"tiny","prompt":7,"options":[]}"#.to_string(),
            r#"{"model":["tiny"]}"#.to_string(),
        ])
        .prop_map(String::into_bytes),
    ];
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    for _ in 0..n {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        for path in [
            "/v1/chat/completions",
            "/api/chat",
            "/api/generate",
            "/v1/embeddings",
            "/api/embed",
            "/api/show",
        ] {
            let r = http
                .post(url(&g, path))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(matches!(status, 200 | 400 | 404), "{path} {status}: {text}");
            if status != 200 {
                let v: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
                assert!(v.get("error").is_some(), "{path}: {text}");
            }
        }
    }
    g.shutdown().await;
}

/// `/metrics` passes Prometheus' own checker after traffic of every kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let Ok(promtool) = which("promtool") else {
        common::skipped(
            "metrics_pass_promtool",
            "promtool is not installed (Debian's `prometheus` package; .ci/run installs it)",
        );
        return;
    };
    let (_primary, _backup, g) = primary_and_backup(&["status=503,rate=0.5"], &[], "", "").await;
    for i in 0..10 {
        let stream = i % 2 == 0;
        post(&g, "/v1/chat/completions", &openai_body("primary", stream)).await;
        post(&g, "/api/chat", &ollama_body("backup", stream)).await;
    }
    post(&g, "/v1/chat/completions", &openai_body("nope", false)).await;
    let text = metrics(&g).await;
    let out = common::output_with_stdin(
        std::process::Command::new(promtool).args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    g.shutdown().await;
}

fn which(exe: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join(exe))
        .find(|p| p.is_file())
        .ok_or(())
}

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

/// The gateway as a process: its stderr, and a way to signal it.
struct Proc {
    child: std::process::Child,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    fn start(cfg: &std::path::Path) -> Self {
        let port = common::free_port();
        let mut child = std::process::Command::new(EXE)
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "gateway",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let l = log.clone();
        common::pump(Box::new(child.stderr.take().unwrap()), move |b| {
            l.lock().unwrap().push_str(&String::from_utf8_lossy(b));
        });
        let p = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.log().contains("listening on") {
            assert!(
                Instant::now() < deadline,
                "the gateway did not start: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn model_ids(p: &Proc) -> Vec<String> {
    let v: Value = reqwest::get(p.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// A changed file is applied to new requests; an invalid one is refused with FILE:LINE:COL
/// and the running config stays; SIGHUP reloads too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_good_and_bad() {
    let s = sim_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.yaml");
    let yaml = |aliases: &str| {
        format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      tiny: {{base_url: {}, model: qwen2_5_0_5b}}\ngateway:\n  aliases: {{{aliases}}}\n", s.base_url())
    };
    std::fs::write(&cfg, yaml("first: tiny")).unwrap();
    let p = Proc::start(&cfg);
    assert!(model_ids(&p).await.contains(&"first".to_string()));
    std::fs::write(&cfg, yaml("second: tiny")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !model_ids(&p).await.contains(&"second".to_string()) {
        assert!(Instant::now() < deadline, "never reloaded: {}", p.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!model_ids(&p).await.contains(&"first".to_string()));
    // Invalid: an alias to a route that does not exist.
    std::fs::write(&cfg, yaml("third: nowhere")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.log().contains("refused") {
        assert!(
            Instant::now() < deadline,
            "the bad config was not reported: {}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = p.log();
    assert!(
        log.contains(&format!("{}:7:20: gateway.aliases.third", cfg.display()))
            && log.contains("unknown route `nowhere`"),
        "{log}"
    );
    assert!(
        model_ids(&p).await.contains(&"second".to_string()),
        "the running config stays"
    );
    let got = reqwest::Client::new()
        .post(p.url("/v1/chat/completions"))
        .json(&openai_body("second", false))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    // SIGHUP after a good edit made without a notification reaching us first is still read.
    std::fs::write(&cfg, yaml("fourth: tiny")).unwrap();
    p.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !model_ids(&p).await.contains(&"fourth".to_string()) {
        assert!(Instant::now() < deadline, "{}", p.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.signal(libc::SIGTERM);
    assert!(p.wait().success());
}

/// SIGTERM: no new connections, answers in flight finish within the drain timeout; past it
/// they end with an in-band error; the process exits 0 either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams() {
    let s = sim::start(SimConfig::new(Flavor::Vllm).timing(5, 50, 20))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (drain, finishes) in [("30", true), ("0.2", false)] {
        let cfg = dir.path().join(format!("gw{drain}.yaml"));
        std::fs::write(&cfg, format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      tiny: {{base_url: {}, model: qwen2_5_0_5b}}\ngateway:\n  drain_timeout_s: {drain}\n", s.base_url())).unwrap();
        let p = Proc::start(&cfg);
        let mut r = reqwest::Client::new()
            .post(p.url("/v1/chat/completions"))
            .json(&openai_body("tiny", true))
            .send()
            .await
            .unwrap();
        let mut body = String::new();
        body.push_str(&String::from_utf8_lossy(&r.chunk().await.unwrap().unwrap()));
        p.signal(libc::SIGTERM);
        while let Ok(Some(c)) = r.chunk().await {
            body.push_str(&String::from_utf8_lossy(&c));
        }
        if finishes {
            assert!(body.ends_with("data: [DONE]\n\n"), "drain {drain}: {body}");
        } else {
            assert!(
                body.contains("shutting down") && !body.contains("[DONE]"),
                "drain {drain}: {body}"
            );
        }
        let log = p.log();
        assert!(p.wait().success(), "{log}");
        assert!(log.contains("draining"), "{log}");
    }
}

/// A `kind: gateway` profile: the supervisor starts it on this config, waits for /health,
/// and stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_profile_runs_under_the_supervisor() {
    let s = sim_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dashboard.yaml");
    let port = common::free_port();
    std::fs::write(&cfg, format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      tiny: {{base_url: {}, model: qwen2_5_0_5b}}\nservers:\n  gw:\n    kind: gateway\n    port: {port}\n", s.base_url())).unwrap();
    let state = dir.path().join("state");
    let cli = |args: &[&str]| {
        std::process::Command::new(EXE)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("ANORAG_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    let out = cli(&["server", "start", "gw", "--wait", "--timeout", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/chat"))
        .json(&ollama_body("tiny", false))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let out = cli(&["server", "logs", "gw"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[gateway] listening on"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&["server", "stop", "gw"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["server", "status", "--json"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"exit_code\":0")
            || String::from_utf8_lossy(&out.stdout).contains("exited"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The official Python clients, where scripts/test installed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_and_ollama_clients() {
    let Some(py) = std::env::var_os("ANORAG_GATEWAY_PY") else {
        common::skipped("the_official_openai_and_ollama_clients", "ANORAG_GATEWAY_PY is unset (scripts/test installs the openai and ollama clients in a venv and sets it)");
        return;
    };
    let ok = sim_with(&[]).await;
    let limited = sim_with(&["status=429,retry_after=3"]).await;
    let broken = sim_with(&["reset,after=3"]).await;
    let routes =
        route("tiny", &ok, &[]) + &route("limited", &limited, &[]) + &route("broken", &broken, &[]);
    let g = gateway_with(&routes, None, "max_attempts: 1", "").await;
    let base = format!("http://{}", g.addr);
    for (scenario, model) in [
        ("basic", "tiny"),
        ("embeddings", "tiny"),
        ("rate_limited", "limited"),
        ("mid_stream", "broken"),
    ] {
        let so = common::gateway_clients(&py, scenario, &base, model).await;
        eprintln!("[gateway] {scenario}:\n{so}");
        if scenario == "basic" {
            for check in [
                "openai.completions\"",
                "openai.completions.stream",
                "ollama.generate.raw",
            ] {
                assert!(so.contains(check), "{check}: {so}");
            }
        }
        if scenario == "rate_limited" {
            assert!(so.contains("\"retry_after\": \"3\""), "{so}");
        }
        if scenario == "mid_stream" {
            // The three tokens before the break were received, and the SDK raised.
            assert!(
                so.contains("openai.mid_stream") && so.contains("ollama.mid_stream"),
                "{so}"
            );
        }
    }
    g.shutdown().await;
}

/// `traffic` reads what the gateway carried: the live reader's totals and the list's rows
/// agree with what was sent and with the simulator's own count, fallbacks included, and
/// `traffic --json` says the same; a gateway that goes away is said to be down, keeps its
/// last figures, and is picked up again when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_reads_what_the_gateway_carried() {
    use anorag::traffic::{self, GatewayView, Update};
    use std::sync::{Arc, Mutex};
    let (_primary, backup, g) = primary_and_backup(&["refuse"], &[], "", "").await;
    let addr = g.addr.to_string();
    let view = Arc::new(Mutex::new(GatewayView::new(&addr)));
    let follower = {
        let (addr, view) = (addr.clone(), view.clone());
        tokio::spawn(async move {
            traffic::follow(&addr, None, traffic::Want::default(), move |u| {
                let mut v = view.lock().unwrap();
                match u {
                    Update::Up => v.connected(),
                    Update::Down(why) => v.disconnected(&why),
                    Update::Event(e) => v.apply(e),
                }
                true
            })
            .await
        })
    };
    until("the reader is connected", || view.lock().unwrap().up).await;
    // 240 requests, 16 at a time; every third asks for the primary and falls back.
    let n = 240u64;
    let http = reqwest::Client::new();
    let sent = futures::stream::iter(0..n)
        .map(|i| {
            let http = http.clone();
            let url = url(&g, "/v1/chat/completions");
            let model = if i % 3 == 0 { "primary" } else { "backup" };
            async move {
                let r = http
                    .post(url)
                    .json(&openai_body(model, i % 2 == 0))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        })
        .buffer_unordered(16);
    use futures::StreamExt;
    sent.collect::<Vec<_>>().await;
    let fallbacks = n.div_ceil(3);
    // The totals come from the per-second aggregates: they are in once their second closed.
    until("every request counted", || {
        let v = view.lock().unwrap();
        v.totals.ok == n && v.totals.fallbacks == fallbacks
    })
    .await;
    {
        let v = view.lock().unwrap();
        assert_eq!(v.totals.started, n);
        assert!(v.totals.errors.is_empty(), "{:?}", v.totals.errors);
        assert_eq!(backup.stats().completed, n, "the simulator's own count");
        let rows: Vec<_> = v.rows().collect();
        assert_eq!(rows.len() as u64, n);
        assert!(
            rows.iter().all(|r| r.stage == "done"),
            "every request ended"
        );
        let fell: Vec<_> = rows.iter().filter(|r| r.route == "primary").collect();
        assert_eq!(fell.len() as u64, fallbacks);
        assert!(
            fell.iter().all(|r| r.served_by.as_deref() == Some("backup")
                && r.chain.starts_with("primary x ")
                && r.chain.ends_with("backup ok")),
            "{:?}",
            fell[0]
        );
        assert!(v.lines.iter().any(
            |l| l.text.contains("route primary failed") && l.text.contains("served by backup")
        ));
    }
    // The one-shot command says the same.
    let out = tokio::process::Command::new(EXE)
        .args(["traffic", "--json", "--gateway", &addr, "--requests", "5"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let gw = &j["gateways"][0];
    assert_eq!(gw["up"], true);
    assert_eq!(gw["last_minute"]["ok"], n, "{gw}");
    assert_eq!(gw["last_minute"]["fallbacks"], fallbacks);
    assert_eq!(gw["requests"].as_array().unwrap().len(), 5);
    let text = tokio::process::Command::new(EXE)
        .args(["traffic", "--gateway", &addr])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains(&format!("gateway {addr}  up")) && text.contains("primary x "),
        "{text}"
    );

    // Down: said so, the figures stay. Back on the same address: picked up again.
    let settings_port = g.addr;
    g.shutdown().await;
    until("the reader saw the gateway go", || !view.lock().unwrap().up).await;
    assert_eq!(view.lock().unwrap().totals.ok, n, "the last figures stay");
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n{}\ngateway:\n  listen: {settings_port}\n",
        route("backup", &backup, &[])
    );
    let cfg = config::load_str(&yaml, "gw.yaml").unwrap();
    let router = factory::build(&cfg).await.unwrap();
    let again = gateway::run(
        Settings::from_config(&cfg, None).unwrap(),
        Live::new(&cfg, router).unwrap(),
    )
    .await
    .unwrap();
    until("the reader picked the gateway up again", || {
        view.lock().unwrap().up
    })
    .await;
    assert!(view
        .lock()
        .unwrap()
        .lines
        .iter()
        .any(|l| l.text.contains("is down")));
    follower.abort();
    again.shutdown().await;
}

/// The console's traffic engine (the watcher the Traffic pane reads) as a test drives it:
/// its latest views go through the console's own `update`.
fn pump(app: &mut anorag::tui::app::App, w: &mut anorag::traffic::Watcher) {
    if w.rx.has_changed().unwrap_or(false) {
        let v = w.rx.borrow_and_update().clone();
        anorag::tui::update::update(app, anorag::tui::action::Action::Traffic(v));
    }
}

async fn pump_until(
    what: &str,
    app: &mut anorag::tui::app::App,
    w: &mut anorag::traffic::Watcher,
    f: impl Fn(&anorag::tui::app::App) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pump(app, w);
        if f(app) {
            return;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pane_text(app: &anorag::tui::app::App, w: u16, h: u16) -> String {
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    t.draw(|f| anorag::tui::view::render(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                + "\n"
        })
        .collect()
}

fn console_app(routes: &[&str]) -> anorag::tui::app::App {
    let mut a = anorag::tui::app::App::new(
        anorag::tui::keymap::KeyMap::defaults(),
        routes.iter().map(|r| r.to_string()).collect(),
        routes[0],
        false,
        100,
    );
    a.pane = anorag::tui::app::Pane::Traffic;
    a
}

fn console_watcher(addr: &str) -> anorag::traffic::Watcher {
    anorag::traffic::watcher::spawn(
        vec![addr.to_string()],
        None,
        anorag::traffic::Want {
            seconds_only: false,
            rows_per_s: Some(anorag::tui::TRAFFIC_ROWS_PER_S),
        },
        Duration::from_millis(250),
    )
}

/// The console watching a gateway that our load generator drives at 1,000 requests/s
/// (open loop): the pane's completed, failed and fallback counts equal the generator's and
/// the simulators' own, and `traffic --json` says the same. Then the gateway goes: the pane
/// says so and keeps its figures, and picks the gateway up when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_counts_what_a_load_generator_sent_through_the_gateway() {
    use anorag::bench::{self, BenchTarget, Load, Plan, Progress, Stop, Workload};
    let (primary, backup, g) = primary_and_backup(
        &["status=503,rate=0.1"],
        &["status=500,rate=0.2"],
        "max_attempts: 2",
        "",
    )
    .await;
    let addr = g.addr.to_string();
    let mut app = console_app(&["primary", "backup"]);
    let mut w = console_watcher(&addr);
    pump_until("the console sees the gateway", &mut app, &mut w, |a| {
        a.traffic.views.first().is_some_and(|v| v.up)
    })
    .await;

    let gen_cfg = config::load_str(
        &format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      gw: {{base_url: 'http://{addr}/v1', model: primary}}\n"),
        "gen.yaml",
    )
    .unwrap();
    let target = BenchTarget::from_router(
        std::sync::Arc::new(factory::build(&gen_cfg).await.unwrap()),
        Some("gw"),
    )
    .unwrap();
    let n = 3000;
    let plan = Plan::new(
        Load::Open {
            rate: 1000.0,
            burstiness: 1.0,
            max_concurrency: None,
        },
        Stop::Requests(n),
        Workload::random(16, 6),
    );
    let (_ctl, rx) = tokio::sync::mpsc::channel(4);
    let (ptx, _prx) = tokio::sync::watch::channel(Progress::default());
    let r = bench::runner::run(&target, &plan, rx, ptx).await.unwrap();
    assert_eq!(r.completed + r.failed, n, "{:?}", r.errors);
    assert!(r.completed > 0 && r.failed > 0, "{:?}", r.errors);

    pump_until("every request counted in the pane", &mut app, &mut w, |a| {
        let t = &a.traffic.views[0].totals;
        t.ok + t.errors.values().sum::<u64>() == n
    })
    .await;
    let t = app.traffic.views[0].totals.clone();
    assert_eq!(t.started, n);
    assert_eq!(
        t.ok, r.completed,
        "completed, as the load generator counted"
    );
    assert_eq!(t.errors.values().sum::<u64>(), r.failed);
    let (p, b) = (primary.stats().completed, backup.stats().completed);
    assert_eq!(p + b, r.completed, "the simulators' own counts");
    assert_eq!(t.fallbacks, b, "every answer from the backup is a fallback");
    assert!(t.fallbacks > 0);
    let screen = pane_text(&app, 200, 60);
    let said = format!(
        "since watched: {} ok, {} errors, {} fallbacks",
        r.completed, r.failed, b
    );
    assert!(screen.contains(&said), "{said}\n{screen}");

    let out = tokio::process::Command::new(EXE)
        .args(["traffic", "--json", "--gateway", &addr])
        .output()
        .await
        .unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &j["gateways"][0]["last_minute"];
    assert_eq!(m["ok"], r.completed, "{m}");
    assert_eq!(m["fallbacks"], b);
    let errors: u64 = m["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(errors, r.failed);

    // The gateway goes: said in the pane, the figures kept; back: picked up again.
    let port = g.addr;
    g.shutdown().await;
    pump_until("the pane says the gateway is down", &mut app, &mut w, |a| {
        !a.traffic.views[0].up
    })
    .await;
    let screen = pane_text(&app, 200, 60);
    assert!(screen.contains("DOWN "), "{screen}");
    assert!(screen.contains(&said), "the last figures stay:\n{screen}");
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n{}\ngateway:\n  listen: {port}\n",
        route("backup", &backup, &[])
    );
    let cfg = config::load_str(&yaml, "gw.yaml").unwrap();
    let again = gateway::run(
        Settings::from_config(&cfg, None).unwrap(),
        Live::new(&cfg, factory::build(&cfg).await.unwrap()).unwrap(),
    )
    .await
    .unwrap();
    pump_until(
        "the pane picks the gateway up again",
        &mut app,
        &mut w,
        |a| a.traffic.views[0].up,
    )
    .await;
    assert!(pane_text(&app, 200, 60).contains(&said));
    again.shutdown().await;
}

/// What the pane shows of a fallback, a circuit opening and closing, a client that left
/// mid-stream, and a server that kept generating after it (an orphan, set against the
/// server's own running count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pane_shows_fallbacks_circuits_cancels_and_orphans() {
    let primary = sim_with(&[]).await;
    primary.set_refusing(true);
    let backup = sim_with(&[]).await;
    let slow = |faults: &'static [&'static str]| async move {
        let mut c = SimConfig::new(Flavor::Vllm).timing(5, 20, 400);
        for f in faults {
            c = c.fault(f.parse::<Fault>().unwrap());
        }
        sim::start(c).await.unwrap()
    };
    let lingering = slow(&["linger"]).await;
    let stopping = slow(&[]).await;
    let routes = route("primary", &primary, &["backup"])
        + &route("backup", &backup, &[])
        + &route("lingering", &lingering, &[])
        + &route("stopping", &stopping, &[]);
    let g = gateway_with(
        &routes,
        None,
        "circuit: {failures: 1, cooldown_ms: 300, max_cooldown_ms: 300}",
        "",
    )
    .await;
    let addr = g.addr.to_string();
    let mut app = console_app(&["primary", "backup", "lingering", "stopping"]);
    let mut w = console_watcher(&addr);
    pump_until("the console sees the gateway", &mut app, &mut w, |a| {
        a.traffic.views.first().is_some_and(|v| v.up)
    })
    .await;
    let http = reqwest::Client::new();
    let ask = |model: &'static str| {
        http.post(url(&g, "/v1/chat/completions"))
            .json(&openai_body(model, true))
            .send()
    };

    // A fallback: the chain on its row, the event among the lines; the circuit opens.
    ask("primary").await.unwrap().bytes().await.unwrap();
    pump_until("the fallback and the open circuit", &mut app, &mut w, |a| {
        let v = &a.traffic.views[0];
        v.rows()
            .any(|r| r.chain == "primary x connect -> backup ok")
            && v.lines.iter().any(|l| {
                l.text
                    .contains("route primary failed (connect); served by backup, attempt 2/")
            })
            && v.lines
                .iter()
                .any(|l| l.text.starts_with("circuit open: route primary"))
    })
    .await;
    let open_at = app.traffic.views[0]
        .lines
        .iter()
        .find(|l| l.text.starts_with("circuit open: route primary"))
        .unwrap()
        .at_ms;
    assert!(open_at > 0, "the event has its time");
    assert!(pane_text(&app, 200, 60).contains("open"));
    // The server is back: the circuit closes once a request gets through, and says when.
    primary.set_refusing(false);
    let closed = |a: &anorag::tui::app::App| {
        a.traffic.views[0]
            .lines
            .iter()
            .any(|l| l.text.starts_with("circuit closed: route primary"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !closed(&app) {
        assert!(Instant::now() < deadline, "never: the circuit closes");
        ask("primary").await.unwrap().bytes().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        pump(&mut app, &mut w);
    }
    let closed_at = app.traffic.views[0]
        .lines
        .iter()
        .find(|l| l.text.starts_with("circuit closed: route primary"))
        .map(|l| l.at_ms);
    assert!(
        closed_at.is_some_and(|c| c > open_at),
        "{closed_at:?} {open_at}"
    );

    // Clients that leave mid-stream: cancelled while streaming, on both slow routes.
    for model in ["lingering", "stopping"] {
        let mut body = openai_body(model, true);
        body["max_tokens"] = json!(400);
        let mut r = http
            .post(url(&g, "/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.chunk().await.unwrap();
        drop(r);
    }
    pump_until("both cancels shown", &mut app, &mut w, |a| {
        a.traffic.views[0]
            .rows()
            .filter(|r| r.stage == "cancelled" && r.route.ends_with("ing"))
            .count()
            == 2
    })
    .await;
    assert!(app.traffic.views[0]
        .lines
        .iter()
        .any(|l| l.text.ends_with("the client left while streaming")));
    // The lingering server still runs its request; the gateway has none in flight there.
    let running = |s: &SimHandle| {
        anorag::telemetry::vllm_metrics::Scrape::parse(&s.metrics_text(), None, Instant::now())
            .running
            .unwrap_or(-1.0)
    };
    pump_until("the orphan is counted", &mut app, &mut w, |a| {
        a.traffic.views[0].orphans("lingering", running(&lingering)) == 1
    })
    .await;
    assert_eq!(running(&stopping), 0.0, "the other server stopped");
    assert_eq!(app.traffic.views[0].orphans("stopping", 0.0), 0);
    g.shutdown().await;
}

/// The seconds' aggregates one reader missed (a silence, a reconnect) are kept: a reader that
/// comes back with `since=T` gets each kept second after T before anything else, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_comes_back_gets_the_seconds_it_missed() {
    let (_s, g) = alone("tiny", &[], "", "").await;
    let n = 12u64;
    for i in 0..n {
        let got = post(&g, "/v1/chat/completions", &openai_body("tiny", i % 2 == 0)).await;
        assert_eq!(got.status, 200);
    }
    let http = reqwest::Client::new();
    let seconds = |since: u64| {
        let (http, url) = (
            http.clone(),
            url(
                &g,
                &format!("/anorag/events?live_only=true&snapshot=true&since={since}"),
            ),
        );
        async move {
            let text = http.get(url).send().await.unwrap().text().await.unwrap();
            text.lines()
                .map(|l| anorag::traffic::wire::parse_line(l.as_bytes()).unwrap())
                .map(|e| match e {
                    anorag::traffic::FeedEvent::Second(s) => *s,
                    other => panic!("only seconds come back, not {other:?}"),
                })
                .collect::<Vec<_>>()
        }
    };
    // Once the requests' seconds have closed, a reader from the start gets them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let s = seconds(0).await;
        if s.iter().map(|s| s.ok).sum::<u64>() == n {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "never: every request in a kept second"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        all.windows(2).all(|w| w[0].t < w[1].t),
        "in order, each once"
    );
    // From the newest it has, nothing; from one before, the rest.
    let newest = all.last().unwrap().t;
    assert!(seconds(newest).await.iter().all(|s| s.t > newest));
    let first = all.first().unwrap().t;
    let later: Vec<u64> = seconds(first).await.iter().map(|s| s.t).collect();
    assert!(later.iter().all(|t| *t > first) && later.len() + 1 >= all.len());
    g.shutdown().await;
}

/// A reader whose connection ended asks again with the newest second it passed on, so the
/// gateway can send the ones it missed (a stand-in gateway: one second, then a close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_asks_again_from_the_newest_second_it_has() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let server = {
        let asked = asked.clone();
        tokio::spawn(async move {
            for t in [41u64, 42] {
                let (mut c, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = c.read(&mut buf).await.unwrap();
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                asked
                    .lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_string());
                let line = format!("{{\"type\":\"second\",\"t\":{t},\"ok\":1}}\n");
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{line}",
                    line.len()
                );
                c.write_all(reply.as_bytes()).await.unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    anorag::traffic::follow(&addr, None, anorag::traffic::Want::default(), |u| {
        if let anorag::traffic::Update::Event(anorag::traffic::FeedEvent::Second(s)) = u {
            seen.push(s.t);
        }
        seen.len() < 2
    })
    .await;
    server.await.unwrap();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(seen, [41, 42]);
    assert!(
        asked[0].contains("live_only=false") && !asked[0].contains("since="),
        "{asked:?}"
    );
    assert!(
        asked[1].contains("live_only=true&since=41"),
        "the second connection asks from the newest second it has: {asked:?}"
    );
}

/// A reader that falls behind the feed misses events (it is told how many), but no second's
/// aggregate: one closed while it lagged follows the `lagged` line, and none comes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_reader_still_gets_every_second_once() {
    use anorag::gateway::events::Event;
    use futures::StreamExt;
    let (_s, g) = alone("tiny", &[], "", "").await;
    let r = reqwest::get(url(&g, "/anorag/events?live_only=true"))
        .await
        .unwrap();
    let feed = &g.shared.feed;
    // The reader reads nothing yet: 12 MiB of notices fill the connection, so the gateway
    // stops writing to it and the feed's 4096 events for it run over.
    let big = "x".repeat(64 * 1024);
    for i in 0..200u64 {
        feed.publish(Event::Notice {
            at_ms: i,
            message: big.clone(),
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second far ahead of the gateway's own, then far more events than are held for it.
    let t = 4_000_000_000u64;
    feed.tick(t, 0, 0, vec![]);
    for i in 0..10_000u64 {
        feed.publish(Event::Notice {
            at_ms: i,
            message: "filler".into(),
        });
    }
    let mut body = r.bytes_stream();
    let mut text = Vec::new();
    // Read up to the last notice published (the gateway's own seconds go on after it).
    let last = b"\"at_ms\":9999,";
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text.windows(last.len()).any(|w| w == last) {
        assert!(Instant::now() < deadline, "never: the last notice");
        match tokio::time::timeout(Duration::from_secs(5), body.next()).await {
            Ok(Some(Ok(b))) => text.extend_from_slice(&b),
            other => panic!("the feed ended early: {other:?}"),
        }
    }
    let text = String::from_utf8_lossy(&text);
    let lagged = text
        .find("\"type\":\"lagged\"")
        .expect("the reader was told it lagged");
    let ours = format!("\"type\":\"second\",\"t\":{t},");
    assert_eq!(
        text.matches(&ours).count(),
        1,
        "the second closed while the reader lagged comes once"
    );
    assert!(text.find(&ours).unwrap() > lagged, "after the lagged line");
    g.shutdown().await;
}
