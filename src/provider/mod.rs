//! The provider layer: one async trait over vLLM/OpenAI (SSE) and Ollama (NDJSON), a router
//! with retries, circuits and fallback chains, and a factory that builds it from the config.
pub mod body;
pub mod circuit;
pub mod error;
pub mod facade;
pub mod factory;
pub mod lean;
pub mod ndjson;
pub mod ollama;
pub mod openai;
pub mod pool;
pub mod router;
pub mod sse;
pub mod timing;
pub mod types;

pub use error::{ErrorClass, ProviderError};
pub use facade::LocalLlm;
pub use router::{Attempt, RouteFailure, RoutedStream, Router};
pub use types::*;

use async_trait::async_trait;
use futures::Stream;
use std::pin::Pin;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// One server speaking one protocol. Implementations do no retries: the router owns them.
#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    fn base_url(&self) -> &str;
    fn model(&self) -> &str;
    /// Sends the request; returns once the response headers are in (not at the first token).
    async fn chat_stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError>;
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError>;
    async fn list_models(&self) -> Result<Vec<String>, ProviderError>;
    /// One vector per input (`/v1/embeddings`, Ollama's `/api/embed`).
    async fn embed(&self, _inputs: &[String]) -> Result<Embeddings, ProviderError> {
        Err(ProviderError::new(
            ErrorClass::NotFound,
            format!("{} serves no embeddings", self.kind()),
        ))
    }
    /// The cheapest liveness check the server offers (`/health`, `/api/version`, `/v1/models`).
    async fn health(&self) -> Result<(), ProviderError>;
    /// Models currently loaded in memory, where the server says (Ollama `/api/ps`).
    async fn loaded_models(&self) -> Option<Vec<String>> {
        None
    }
    /// Where the server publishes Prometheus metrics (vLLM's `/metrics`), if it does.
    fn metrics_url(&self) -> Option<String> {
        None
    }
    /// The streamed request as a plain HTTP/1.1 exchange (the load test's lean client), where
    /// the protocol is OpenAI-style SSE over `http://`; `None` elsewhere (TLS, NDJSON).
    fn sse_request(&self, _req: &ChatRequest) -> Option<RawSseRequest> {
        None
    }
}

/// What a plain HTTP/1.1 client needs to send a streamed chat request exactly as
/// [`Provider::chat_stream`] would: the same body bytes and headers.
pub struct RawSseRequest {
    /// `host:port` to connect to.
    pub authority: String,
    /// The request target: path and query.
    pub path: String,
    pub body: Vec<u8>,
    /// The bearer token, if the route has a key (sent as `authorization`, never shown).
    pub api_key: Option<crate::secret::Secret>,
}

/// Default sampling parameters of a route; a request's own values win.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
}

impl SamplingDefaults {
    pub fn apply(&self, req: &ChatRequest) -> (Option<f32>, Option<f32>, Option<u32>) {
        (
            req.temperature.or(self.temperature),
            req.top_p.or(self.top_p),
            req.max_tokens.or(self.max_tokens),
        )
    }
}

/// Sends a request; a refused or failed connection, or an answer that is not 2xx, is the
/// error it describes.
pub async fn send_ok(rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let resp = rb
        .send()
        .await
        .map_err(|e| ProviderError::from_reqwest(&e, false))?;
    if !resp.status().is_success() {
        return Err(error_from_response(resp).await);
    }
    Ok(resp)
}

/// Reads an error answer's body (bounded) and classifies it.
pub async fn error_from_response(resp: reqwest::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = error::parse_retry_after(resp.headers());
    let read = body::read_prefix(resp, body::MAX_ERROR_BODY_BYTES);
    let body = match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Ok((b, _)) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    error::classify_http(status, &body, retry_after)
}
