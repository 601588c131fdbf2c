//! The gateway's HTTP surface: each dialect's endpoints, `/health`, `/metrics`, and the
//! console's feed (`/anorag/events`, `/anorag/stats`). Handlers check the key, read the body
//! under its cap and deadline, parse it, resolve the model, and hand over to the relay.
use super::auth::{authorize, Caller, OllamaCaller};
use super::dialect::{self, Dialect, Shape};
use super::errors::error_response;
use super::parse::{self, BadField, Parsed};
use super::relay::{self, Ask};
use super::{Live, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::St;

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route(
            "/v1/chat/completions",
            chat(Dialect::OpenAi, Shape::Chat, parse::openai_chat),
        )
        .route(
            "/v1/completions",
            chat(Dialect::OpenAi, Shape::Completion, parse::openai_completion),
        )
        .route(
            "/api/chat",
            chat(Dialect::Ollama, Shape::Chat, parse::ollama_chat),
        )
        .route(
            "/api/generate",
            chat(Dialect::Ollama, Shape::Generate, parse::ollama_generate),
        )
        .route("/v1/embeddings", embed(Dialect::OpenAi))
        .route("/api/embed", embed(Dialect::Ollama))
        .route("/api/tags", get(tags))
        .route("/api/version", get(version))
        .route("/api/show", post(show))
        .route("/", get(root).head(root))
        .route("/anorag/events", get(super::feed_http::events))
        .route("/anorag/stats", get(stats))
        .fallback(not_found)
        .with_state(shared)
}

type Parse = fn(&[u8]) -> Result<Parsed, BadField>;

/// A chat-like endpoint of one dialect.
fn chat(d: Dialect, shape: Shape, parse: Parse) -> axum::routing::MethodRouter<Arc<Shared>> {
    post(
        move |State(sh): St, Extension(peer): Extension<SocketAddr>, req: Request| {
            chat_like(sh, peer, req, d, shape, parse)
        },
    )
}

/// The embeddings endpoint of one dialect.
fn embed(d: Dialect) -> axum::routing::MethodRouter<Arc<Shared>> {
    post(
        move |State(sh): St, Extension(peer): Extension<SocketAddr>, req: Request| {
            embed_like(sh, peer, req, d)
        },
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

async fn root() -> &'static str {
    "Ollama is running (anorag-tui gateway)"
}

async fn not_found(req: Request) -> Response {
    let d = if req.uri().path().starts_with("/api/") {
        Dialect::Ollama
    } else {
        Dialect::OpenAi
    };
    error_response(
        d,
        404,
        &format!("no such endpoint: {} {}", req.method(), req.uri().path()),
        Some("not_found"),
        None,
    )
}

/// The body, whole, within the size cap and the client deadline.
async fn read_body(
    sh: &Shared,
    body: Body,
    headers: &HeaderMap,
    d: Dialect,
) -> Result<Bytes, Response> {
    let max = sh.settings.max_body_bytes;
    let too_large = || {
        sh.metrics.refused("body_too_large");
        sh.feed.refused();
        error_response(d, 413, &format!("the request body is over the gateway's limit of {max} bytes (gateway.max_body_bytes)"), Some("body_too_large"), None)
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > max)
    {
        return Err(too_large());
    }
    match tokio::time::timeout(sh.settings.client_timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let over = e
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if over {
                Err(too_large())
            } else {
                sh.metrics.refused("client_timeout");
                Err(error_response(
                    d,
                    400,
                    "the request body broke off",
                    Some("bad_body"),
                    None,
                ))
            }
        }
        Err(_) => {
            sh.metrics.refused("client_timeout");
            sh.feed.refused();
            Err(error_response(
                d,
                408,
                &format!(
                    "the request body did not arrive within {} ms (gateway.client_timeout_ms)",
                    sh.settings.client_timeout.as_millis()
                ),
                Some("client_timeout"),
                None,
            ))
        }
    }
}

fn bad_request(sh: &Shared, d: Dialect, b: BadField) -> Response {
    sh.metrics.refused("bad_request");
    sh.feed.refused();
    let body = dialect::error_body(d, &b.message, "invalid_request_error", Some(&b.field), None);
    json_response(StatusCode::BAD_REQUEST, body)
}

fn unknown_model(sh: &Shared, live: &Live, d: Dialect, asked: &str) -> Response {
    sh.metrics.refused("unknown_model");
    sh.feed.refused();
    let names = live.names.names().join(", ");
    let body = match d {
        Dialect::OpenAi => dialect::error_body(
            d,
            &format!("The model `{asked}` does not exist on this gateway. Models: {names}"),
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
        ),
        Dialect::Ollama => dialect::error_body(
            d,
            &format!("model '{asked}' not found (this gateway serves: {names})"),
            "",
            None,
            None,
        ),
    };
    json_response(StatusCode::NOT_FOUND, body)
}

/// What every endpoint with a body checks first: the key, then the body under its cap and
/// deadline. The routes and names in force, the client's name and the body.
async fn admit(
    sh: &Shared,
    peer: SocketAddr,
    req: Request,
    d: Dialect,
) -> Result<(Arc<Live>, String, Bytes), Response> {
    let live = sh.live();
    let (parts, body) = req.into_parts();
    let client = authorize(sh, &live, &parts.headers, d, peer)?;
    let body = read_body(sh, body, &parts.headers, d).await?;
    Ok((live, client, body))
}

/// Every chat-like endpoint: key, body, parse, model, relay.
async fn chat_like(
    sh: Arc<Shared>,
    peer: SocketAddr,
    req: Request,
    d: Dialect,
    shape: Shape,
    parse: Parse,
) -> Response {
    let arrived = Instant::now();
    let (live, client, body) = match admit(&sh, peer, req, d).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match parse(&body) {
        Ok(p) => p,
        Err(b) => return bad_request(&sh, d, b),
    };
    let Some(route) = live.names.resolve(&p.model).map(String::from) else {
        return unknown_model(&sh, &live, d, &p.model);
    };
    if d == Dialect::Ollama && p.req.messages.is_empty() && p.req.raw_prompt.is_none() {
        return ollama_load(&p);
    }
    drop(live);
    let ask = Ask {
        dialect: d,
        shape,
        asked: p.model,
        route,
        req: p.req,
        stream: p.stream,
        include_usage: p.include_usage,
        client,
    };
    relay::serve(sh, ask, arrived).await
}

/// Ollama's load request (no messages): the model is "loaded" (the route exists).
fn ollama_load(p: &Parsed) -> Response {
    let v = json!({"model": p.model, "created_at": crate::time::rfc3339_nanos_now(), "message": {"role": "assistant", "content": ""}, "done_reason": "load", "done": true});
    let mut r = json_response(StatusCode::OK, format!("{v}\n"));
    if p.stream {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
    }
    r
}

async fn embed_like(sh: Arc<Shared>, peer: SocketAddr, req: Request, d: Dialect) -> Response {
    let arrived = Instant::now();
    let (live, client, body) = match admit(&sh, peer, req, d).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let e = match parse::embed(&body) {
        Ok(e) => e,
        Err(b) => return bad_request(&sh, d, b),
    };
    let Some(route) = live.names.resolve(&e.model).map(String::from) else {
        return unknown_model(&sh, &live, d, &e.model);
    };
    drop(live);
    relay::embed(sh, d, route, e, client, arrived).await
}

async fn models(Caller(live): Caller) -> Response {
    let created = crate::time::unix_secs_now();
    let data: Vec<_> = live
        .names
        .all()
        .map(|(n, r)| json!({"id": n, "object": "model", "created": created, "owned_by": format!("anorag:{r}")}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data}).to_string(),
    )
}

fn ollama_entry(name: &str, route: &str, kind: &str) -> serde_json::Value {
    json!({"name": name, "model": name, "modified_at": "1970-01-01T00:00:00Z", "size": 0, "digest": "", "details": {"parent_model": "", "format": kind, "family": route, "families": [route], "parameter_size": "", "quantization_level": ""}})
}

async fn tags(OllamaCaller(live): OllamaCaller) -> Response {
    let models: Vec<_> = live
        .names
        .all()
        .map(|(n, r)| {
            let kind = live.names.route(r).map_or("", |e| e.kind.as_str());
            ollama_entry(n, r, kind)
        })
        .collect();
    json_response(StatusCode::OK, json!({ "models": models }).to_string())
}

async fn version() -> Response {
    // Clients check Ollama's version; this is the API revision the gateway speaks.
    json_response(StatusCode::OK, r#"{"version":"0.33.0"}"#.into())
}

async fn show(State(sh): St, OllamaCaller(live): OllamaCaller, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(&sh, body, &parts.headers, Dialect::Ollama).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let asked = match parse::object(&body).and_then(|m| parse::model(&m)) {
        Ok(m) => m,
        Err(b) => return bad_request(&sh, Dialect::Ollama, b),
    };
    let Some(route) = live.names.resolve(&asked) else {
        return unknown_model(&sh, &live, Dialect::Ollama, &asked);
    };
    let e = live.names.route(route);
    let kind = e.map_or("", |e| e.kind.as_str());
    let served = e.map_or("", |e| e.model.as_str());
    let v = json!({
        "modelfile": format!("# served by route {route} ({kind}, model {served}) through the anorag-tui gateway\n"),
        "parameters": "",
        "template": "",
        "details": {"parent_model": "", "format": kind, "family": route, "families": [route], "parameter_size": "", "quantization_level": ""},
        "model_info": {"general.architecture": kind, "anorag.route": route, "anorag.model": served},
        "capabilities": ["completion"],
        "modified_at": "1970-01-01T00:00:00Z",
    });
    json_response(StatusCode::OK, v.to_string())
}

async fn metrics(State(sh): St, _: Caller) -> Response {
    let mut r = (StatusCode::OK, sh.metrics.render(&sh.gauges())).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// A snapshot: the gateway's settings and load, each route with its circuits, and the last
/// minute's per-second aggregates.
async fn stats(State(sh): St, Caller(live): Caller) -> Response {
    let secs = sh.feed.seconds();
    let last: Vec<_> = secs.iter().rev().take(60).rev().collect();
    let routes: Vec<_> = live
        .router
        .routes()
        .iter()
        .map(|r| {
            let circuits: Vec<_> = live
                .router
                .circuits(&r.name)
                .into_iter()
                .map(|(t, c)| json!({"target": t, "state": format!("{:?}", c.state).to_lowercase(), "reopens_in_ms": c.reopens_in_ms, "consecutive_failures": c.consecutive_failures, "last_error": c.last_error}))
                .collect();
            json!({"route": r.name, "kind": r.kind.as_str(), "exposed": live.names.route(&r.name).is_some(), "fallback": r.fallback, "circuits": circuits})
        })
        .collect();
    let v = json!({
        "listen": sh.settings.listen.to_string(),
        "config": live.file,
        "in_flight": sh.admission.in_flight(),
        "queued": sh.admission.queued(),
        "max_in_flight": sh.settings.max_in_flight,
        "max_queue": sh.settings.max_queue,
        "keys": !live.keys.is_empty(),
        "names": live.names.names(),
        "routes": routes,
        "seconds": last,
    });
    json_response(StatusCode::OK, v.to_string())
}
