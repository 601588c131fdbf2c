//! Ollama flavour: `/api/chat` and `/api/generate` NDJSON (headers only with the first token,
//! as Ollama writes them lazily), `/api/tags`, `/api/ps`, `/api/version`, `GET /`.
use super::fault::Plan;
use super::{text, RequestGuard, SimState};
use crate::protocol::same_model;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

type St = State<Arc<SimState>>;

pub(super) fn router(st: Arc<SimState>) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route(
            "/api/version",
            get(|| async { json_ok(json!({"version":"0.33.0"})) }),
        )
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .route("/api/embed", post(embed))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(st)
}

fn json_ok(v: Value) -> Response {
    json_status(StatusCode::OK, v)
}

fn json_status(s: StatusCode, v: Value) -> Response {
    let mut r = (s, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn err(code: u16, msg: &str) -> Response {
    json_status(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "error": msg }),
    )
}

fn model_entry(st: &SimState) -> Value {
    json!({"name":st.cfg.model,"model":st.cfg.model,"modified_at":"2026-11-01T00:00:00Z","size":397821319,"digest":"a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"494.03M","quantization_level":"Q4_K_M"}})
}

async fn tags(State(st): St) -> Response {
    json_ok(json!({ "models": [model_entry(&st)] }))
}

async fn ps(State(st): St) -> Response {
    let mut m = model_entry(&st);
    m["expires_at"] = json!("2099-01-01T00:00:00Z");
    m["size_vram"] = json!(397821319);
    m["context_length"] = json!(st.cfg.max_model_len);
    json_ok(json!({ "models": [m] }))
}

async fn embed(State(st): St, body: Bytes) -> Response {
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    let plan = st.plan();
    if let Some((code, _)) = plan.status {
        return err(code, "injected failure");
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !v
        .get("model")
        .and_then(Value::as_str)
        .is_some_and(|m| same_model(m, &st.cfg.model))
    {
        return err(
            404,
            &format!("model '{}' not found", v["model"].as_str().unwrap_or("")),
        );
    }
    let Some(inputs) = v.get("input").and_then(text::embed_inputs) else {
        return err(400, "invalid input type");
    };
    let tokens: u64 = inputs
        .iter()
        .map(|i| i.split_whitespace().count() as u64 + 1)
        .sum();
    let vectors: Vec<Vec<f32>> = inputs.iter().map(|t| text::embedding(t)).collect();
    st.stats.completed.fetch_add(1, Ordering::Relaxed);
    json_ok(
        json!({"model": st.cfg.model, "embeddings": vectors, "total_duration": 1_000_000u64, "load_duration": 0u64, "prompt_eval_count": tokens}),
    )
}

async fn chat(State(st): St, body: Bytes) -> Response {
    serve(st, body, true).await
}

async fn generate(State(st): St, body: Bytes) -> Response {
    serve(st, body, false).await
}

async fn serve(st: Arc<SimState>, body: Bytes, is_chat: bool) -> Response {
    let t0 = Instant::now();
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return err(400, &format!("invalid character in JSON: {e}")),
    };
    st.remember_request(&v);
    let Some(model) = v.get("model").and_then(Value::as_str) else {
        return err(400, "model is required");
    };
    if !same_model(model, &st.cfg.model) {
        return err(404, &format!("model '{model}' not found"));
    }
    let prompt_tokens = if is_chat {
        st.cfg.tokenizer.count_messages(
            v.get("messages")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
    } else {
        text::prompt_tokens_of(v.get("prompt").and_then(Value::as_str).unwrap_or(""))
    };
    let num_predict = v["options"]["num_predict"].as_i64().filter(|n| *n >= 0);
    let n = num_predict.map_or(st.cfg.tokens, |p| (p as u32).min(st.cfg.tokens));
    let finish = if num_predict.is_some_and(|p| n as i64 >= p) {
        "length"
    } else {
        "stop"
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let plan = st.plan();
    if let Some(ms) = plan.slow_headers_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some((code, _)) = plan.status {
        return match code {
            503 => err(
                503,
                "server busy, please try again.  maximum pending requests exceeded",
            ),
            c if c >= 500 => err(c, "llama runner process has terminated: exit status 2"),
            c => err(c, "injected error"),
        };
    }
    let guard = RequestGuard::new(st.clone(), t0, prompt_tokens + u64::from(n));
    let cfg = &st.cfg;
    // Ollama writes no headers until the first token exists.
    tokio::time::sleep_until((t0 + cfg.ttft).into()).await;
    let g = NdGen {
        st: st.clone(),
        is_chat,
        t0,
        n,
        finish,
        prompt_tokens,
        plan,
        next: 0,
        guard: Some(guard),
        stalled: false,
    };
    if !stream {
        let mut g = g;
        tokio::time::sleep_until((t0 + cfg.ttft + cfg.itl * n.saturating_sub(1)).into()).await;
        let text: String = (0..n).map(text::token).collect();
        let line = g.done_line(&text);
        if let Some(mut gd) = g.guard.take() {
            gd.finish = Some(finish);
        }
        return json_ok(line);
    }
    let body = futures::stream::unfold(g, |mut g| async move { g.step().await.map(|b| (b, g)) });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

struct NdGen {
    st: Arc<SimState>,
    is_chat: bool,
    t0: Instant,
    n: u32,
    finish: &'static str,
    prompt_tokens: u64,
    plan: Plan,
    next: u32,
    guard: Option<RequestGuard>,
    stalled: bool,
}

impl NdGen {
    fn piece(&self, text: &str, done: bool) -> Value {
        let mut v =
            json!({"model": self.st.cfg.model, "created_at": crate::time::rfc3339_nanos_now()});
        if self.is_chat {
            v["message"] = json!({"role":"assistant","content":text});
        } else {
            v["response"] = json!(text);
        }
        v["done"] = json!(done);
        v
    }

    fn done_line(&mut self, text: &str) -> Value {
        let cfg = &self.st.cfg;
        let mut v = self.piece(text, true);
        let ns = |d: Duration| d.as_nanos() as u64;
        v["done_reason"] = json!(self.finish);
        v["total_duration"] = json!(ns(self.t0.elapsed()));
        v["load_duration"] = json!(1_334_875u64);
        v["prompt_eval_count"] = json!(self.prompt_tokens);
        v["prompt_eval_duration"] = json!(ns(cfg.ttft));
        v["eval_count"] = json!(self.n);
        v["eval_duration"] = json!(ns(cfg.itl * self.n.saturating_sub(1)));
        let mut m = self.st.metrics();
        m.prompt_tokens += self.prompt_tokens;
        v
    }

    async fn step(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        self.guard.as_ref()?;
        let i = self.next;
        let cfg = &self.st.cfg;
        let due = self.t0 + cfg.ttft + cfg.itl * i;
        if let Err(e) = self.plan.before_chunk(i, due, &mut self.stalled).await {
            self.guard = None;
            return Some(Err(e));
        }
        if self.plan.truncate_after == Some(i) {
            self.guard = None;
            return None;
        }
        self.next += 1;
        let mut out = String::new();
        if i < self.n {
            if self.plan.oversize_at == Some(i) {
                out.push_str(&"x".repeat(super::fault::OVERSIZE_BYTES));
            } else if self.plan.malformed_at == Some(i) {
                out.push_str("{\"model\":\"broken\",\"message\":{\"content\":\n");
            } else {
                out.push_str(&self.piece(&text::token(i), false).to_string());
                out.push('\n');
            }
        }
        if i + 1 >= self.n {
            let line = self.done_line("");
            out.push_str(&line.to_string());
            out.push('\n');
            if let Some(mut g) = self.guard.take() {
                g.finish = Some(self.finish);
            }
        }
        Some(Ok(Bytes::from(out)))
    }
}
