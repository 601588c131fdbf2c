//! vLLM and OpenAI flavours of `/v1/chat/completions`, `/v1/completions` (a raw prompt, no
//! chat template), `/v1/embeddings`, `/v1/models`, and vLLM's `/health`,
//! `/version`, `/metrics`. Chunk layouts follow the captures in tests/fixtures; the streamed
//! body is written by `openai_stream`.
use super::openai_stream::{Ask, StreamGen};
use super::{text, Flavor, RequestGuard, SimState};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

type St = State<Arc<SimState>>;

pub(super) fn router(st: Arc<SimState>) -> axum::Router {
    let mut r = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models));
    if st.cfg.flavor == Flavor::Vllm {
        r = r
            .route("/health", get(health))
            .route("/ping", get(health))
            .route("/version", get(version))
            .route("/metrics", get(metrics))
            .route("/tokenize", post(tokenize))
            .route("/detokenize", post(detokenize));
    }
    r.fallback(not_found).with_state(st)
}

/// vLLM's `/tokenize` and `/detokenize`, on the simulator's tokenizer.
async fn tokenize(State(st): St, body: axum::body::Bytes) -> Response {
    tokenizer_call(&st, &body, |v| {
        super::tokenize::tokenize(&st.cfg.tokenizer, v, st.cfg.max_model_len)
    })
}

async fn detokenize(State(st): St, body: axum::body::Bytes) -> Response {
    tokenizer_call(&st, &body, |v| {
        super::tokenize::detokenize(&st.cfg.tokenizer, v)
    })
}

fn tokenizer_call(
    st: &SimState,
    body: &[u8],
    f: impl FnOnce(&Value) -> Result<Value, String>,
) -> Response {
    match serde_json::from_slice::<Value>(body)
        .map_err(|e| e.to_string())
        .and_then(|v| f(&v))
    {
        Ok(v) => json_response(StatusCode::OK, v.to_string()),
        Err(e) => error(st, 400, &e, "BadRequestError", None, None),
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn not_found(State(st): St) -> Response {
    match st.cfg.flavor {
        Flavor::Openai => error(&st, 404, "Invalid URL", "invalid_request_error", None, None),
        _ => json_response(StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#.into()),
    }
}

async fn health() -> Response {
    StatusCode::OK.into_response()
}

async fn version() -> Response {
    json_response(StatusCode::OK, r#"{"version":"0.32.0"}"#.into())
}

async fn metrics(State(st): St) -> Response {
    let mut r = (StatusCode::OK, st.metrics().render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn models(State(st): St, headers: HeaderMap) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let m = &st.cfg.model;
    let body = match st.cfg.flavor {
        Flavor::Openai => {
            json!({"object":"list","data":[{"id":m,"object":"model","created":crate::time::unix_secs_now(),"owned_by":"system"}]})
        }
        _ => {
            json!({"object":"list","data":[{"id":m,"object":"model","created":crate::time::unix_secs_now(),"owned_by":"vllm","root":m,"parent":null,"max_model_len":st.cfg.max_model_len}]})
        }
    };
    json_response(StatusCode::OK, body.to_string())
}

/// An error in the flavour's envelope: vLLM's code is an integer, OpenAI's a string or null.
fn error(
    st: &SimState,
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = match st.cfg.flavor {
        Flavor::Openai => {
            json!({"error":{"message":message,"type":kind,"param":param,"code":code}})
        }
        _ => json!({"error":{"message":message,"type":kind,"param":param,"code":status}}),
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
}

fn check_auth(st: &SimState, headers: &HeaderMap) -> Option<Response> {
    let key = st.cfg.api_key.as_ref()?;
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if got == Some(key.expose()) {
        return None;
    }
    Some(match st.cfg.flavor {
        Flavor::Openai => error(
            st,
            401,
            "Incorrect API key provided.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        _ => json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"Unauthorized"}"#.into(),
        ),
    })
}

fn status_fault(st: &SimState, code: u16, retry_after: Option<f64>) -> Response {
    let mut r = match (st.cfg.flavor, code) {
        (Flavor::Openai, 429) => error(st, 429, "Rate limit reached for requests. Please try again in 1s.", "requests", None, Some("rate_limit_exceeded")),
        (_, 503) => error(st, 503, "The engine is currently busy and cannot accept new requests. Please try again later or on a different instance.", "Service Unavailable", None, None),
        (Flavor::Openai, c) => error(st, c, "The server had an error while processing your request.", "server_error", None, None),
        (_, c) if c >= 500 => error(st, c, "EngineCore encountered an issue.", "InternalServerError", None, None),
        (_, c) => error(st, c, "Injected client error.", "BadRequestError", None, None),
    };
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&format!("{s}")) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

async fn embeddings(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let plan = st.plan();
    if let Some((code, ra)) = plan.status {
        return status_fault(&st, code, ra);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.remember_request(&v);
    let Some(inputs) = v.get("input").and_then(text::embed_inputs) else {
        return error(
            &st,
            400,
            "`input` must be a string or a list of strings",
            "BadRequestError",
            Some("input"),
            None,
        );
    };
    let tokens: u64 = inputs
        .iter()
        .map(|i| i.split_whitespace().count() as u64 + 1)
        .sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": text::embedding(t)}))
        .collect();
    st.stats.completed.fetch_add(1, Ordering::Relaxed);
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data, "model": st.cfg.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}).to_string(),
    )
}

/// The error is the ready response. It is large, but this is the cold path of a test server.
#[allow(clippy::result_large_err)]
fn validate(st: &SimState, body: &[u8], text_completion: bool) -> Result<Ask, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let msg = format!("1 validation error:\n  {{'type': 'json_invalid', 'loc': 'body.{}', 'msg': 'JSON decode error', 'input': '<dict of 0 items>', 'ctx': {{'error': '{}'}}}}", e.column(), "Expecting value");
        error(st, 400, &msg, "Bad Request", Some(&format!("body.{}", e.column())), None)
    })?;
    st.remember_request(&v);
    let field = if text_completion {
        "prompt"
    } else {
        "messages"
    };
    let prompt_tokens = match (text_completion, v.get(field)) {
        (false, Some(Value::Array(m))) => st.cfg.tokenizer.count_messages(m),
        (true, Some(Value::String(p))) => st.cfg.tokenizer.count_prompt(p),
        (true, Some(Value::Array(ps))) if ps.len() == 1 && ps[0].is_string() => {
            st.cfg.tokenizer.count_prompt(ps[0].as_str().unwrap_or(""))
        }
        _ => return Err(error(st, 400, &format!("1 validation error:\n  {{'type': 'missing', 'loc': 'body.{field}', 'msg': 'Field required'}}"), "Bad Request", Some(&format!("body.{field}")), None)),
    };
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        if m != st.cfg.model {
            return Err(match st.cfg.flavor {
                Flavor::Openai => error(
                    st,
                    404,
                    &format!("The model `{m}` does not exist or you do not have access to it."),
                    "invalid_request_error",
                    None,
                    Some("model_not_found"),
                ),
                _ => error(
                    st,
                    404,
                    &format!(
                        "The model `{m}` does not exist. Valid aliases: {}.",
                        st.cfg.model
                    ),
                    "NotFoundError",
                    Some("model"),
                    None,
                ),
            });
        }
    } else if st.cfg.flavor == Flavor::Openai {
        return Err(error(
            st,
            400,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
            None,
        ));
    }
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if v.get("stream_options").is_some_and(|o| !o.is_null()) && !stream {
        return Err(error(
            st,
            400,
            "Stream options can only be defined when `stream=True`.",
            "BadRequestError",
            None,
            None,
        ));
    }
    let include_usage = v["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let max_tokens = v
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| v.get("max_tokens").and_then(Value::as_u64));
    let len = u64::from(st.cfg.max_model_len);
    if let Some(mt) = max_tokens {
        if mt > len {
            return Err(error(st, 400, &format!("max_tokens={mt} cannot be greater than max_model_len={len}. Please request fewer output tokens. (parameter=max_tokens, value={mt})"), "BadRequestError", Some("max_tokens"), None));
        }
    }
    if prompt_tokens > len {
        return Err(error(st, 400, &format!("This model's maximum context length is {len} tokens. However, your prompt contains at least {prompt_tokens} input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value={prompt_tokens})"), "BadRequestError", Some("input_tokens"), None));
    }
    // vLLM 0.32 clamps the budget to what is left of the context.
    let budget = max_tokens.unwrap_or(len).min(len - prompt_tokens);
    let n = (st.cfg.tokens as u64).min(budget) as u32;
    let finish = if max_tokens.is_some_and(|m| u64::from(n) >= m)
        || u64::from(n) == budget && budget < st.cfg.tokens as u64
    {
        "length"
    } else {
        "stop"
    };
    Ok(Ask {
        text: text_completion,
        n,
        finish,
        prompt_tokens,
        stream,
        include_usage,
    })
}

async fn chat(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    generate(st, headers, body, false).await
}

async fn completions(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    generate(st, headers, body, true).await
}

async fn generate(st: Arc<SimState>, headers: HeaderMap, body: Bytes, text: bool) -> Response {
    // A server that slows down with uptime: the wait comes before the request's own clock.
    let extra = st.slowdown();
    if !extra.is_zero() {
        tokio::time::sleep(extra).await;
    }
    let t0 = Instant::now();
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let ask = match validate(&st, &body, text) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let plan = st.plan();
    let waiting = super::HeadersGuard(Some(st.clone()));
    if let Some(ms) = plan.slow_headers_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    waiting.answered();
    if let Some((code, ra)) = plan.status {
        return status_fault(&st, code, ra);
    }
    let kind = if ask.text { "cmpl" } else { "chatcmpl" };
    let id = format!("{kind}-{:016x}", rand::random::<u64>());
    // With a capacity, generation starts when a slot is free; the TTFT counts the wait.
    let slot = st.slot().await;
    let arrived = t0;
    let t0 = if slot.is_some() { Instant::now() } else { t0 };
    let guard = RequestGuard::new(st.clone(), t0, ask.prompt_tokens + u64::from(ask.n));
    if !ask.stream {
        return complete(st, ask, id, t0, guard, slot).await;
    }
    let s = StreamGen {
        st: st.clone(),
        id,
        created: crate::time::unix_secs_now(),
        arrived,
        _slot: slot,
        t0,
        ask,
        plan,
        next: 0,
        last_at: t0,
        guard: Some(guard),
        stalled: false,
    };
    let body = futures::stream::unfold(s, |mut s| async move { s.step().await.map(|b| (b, s)) });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    r
}

async fn complete(
    st: Arc<SimState>,
    ask: Ask,
    id: String,
    t0: Instant,
    mut guard: RequestGuard,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Response {
    let cfg = &st.cfg;
    let end = t0 + cfg.ttft + cfg.itl * ask.n.saturating_sub(1);
    tokio::time::sleep_until(end.into()).await;
    let text: String = (0..ask.n).map(text::token).collect();
    {
        let mut m = st.metrics();
        m.prompt_tokens += ask.prompt_tokens;
        m.generation_tokens += u64::from(ask.n);
        m.observe_ttft(cfg.ttft.as_secs_f64());
    }
    guard.finish = Some(ask.finish);
    let usage = json!({"prompt_tokens":ask.prompt_tokens,"total_tokens":ask.prompt_tokens + u64::from(ask.n),"completion_tokens":ask.n});
    if ask.text {
        let body = json!({"id":id,"object":"text_completion","created":crate::time::unix_secs_now(),"model":cfg.model,"choices":[{"index":0,"text":text,"logprobs":null,"finish_reason":ask.finish,"stop_reason":null}],"usage":usage});
        return json_response(StatusCode::OK, body.to_string());
    }
    let body = match cfg.flavor {
        Flavor::Openai => {
            json!({"id":id,"object":"chat.completion","created":crate::time::unix_secs_now(),"model":cfg.model,"choices":[{"index":0,"message":{"role":"assistant","content":text,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":ask.finish}],"usage":usage,"service_tier":"default","system_fingerprint":"fp_sim"})
        }
        _ => {
            json!({"id":id,"object":"chat.completion","created":crate::time::unix_secs_now(),"model":cfg.model,"choices":[{"index":0,"message":{"role":"assistant","content":text,"refusal":null,"annotations":null,"audio":null,"function_call":null,"reasoning":null},"logprobs":null,"finish_reason":ask.finish,"stop_reason":null,"token_ids":null}],"service_tier":null,"system_fingerprint":"vllm-0.32.0-sim","usage":usage,"prompt_logprobs":null,"prompt_token_ids":null,"kv_transfer_params":null})
        }
    };
    json_response(StatusCode::OK, body.to_string())
}
