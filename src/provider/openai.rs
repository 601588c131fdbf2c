//! OpenAI-compatible client for vLLM and OpenAI: `/v1/chat/completions` with SSE streaming.
use super::body::{decode_body, Item};
use super::error::{classify_in_band, ErrorClass, ProviderError};
use super::sse::{SseEvent, SseParser};
use super::{
    error_from_response, ChatRequest, ChatResponse, EventStream, Provider, ProviderKind,
    RawSseRequest, SamplingDefaults, StreamEvent, Usage,
};
use crate::secret::Secret;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::time::Instant;

/// Which dialect of the API to speak: they differ in the token-budget field and extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// vLLM (and the built-in simulator): `max_tokens`, `ignore_eos`, `/health`.
    Vllm,
    /// OpenAI: `max_completion_tokens`, no `/health` (liveness is `/v1/models`).
    OpenAi,
}

pub struct OpenAiCompat {
    kind: ProviderKind,
    dialect: Dialect,
    base_url: String,
    model: String,
    client: reqwest::Client,
    api_key: Option<Secret>,
    defaults: SamplingDefaults,
    chat_url: reqwest::Url,
    completions_url: reqwest::Url,
    /// Streams over plain `http://` without a proxy go through the lean client.
    lean: Option<std::sync::Arc<super::lean::LeanClient>>,
}

/// The request body, serialized straight from borrowed fields.
#[derive(serde::Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<&'a [super::Message]>,
    /// A raw completion's prompt (`/v1/completions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_eos: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
}

#[derive(serde::Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl std::fmt::Debug for OpenAiCompat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompat")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish()
    }
}

impl OpenAiCompat {
    pub fn new(
        kind: ProviderKind,
        base_url: &str,
        model: &str,
        client: reqwest::Client,
        api_key: Option<Secret>,
        defaults: SamplingDefaults,
    ) -> Self {
        let dialect = match kind {
            ProviderKind::Openai => Dialect::OpenAi,
            _ => Dialect::Vllm,
        };
        let base_url = base_url.trim_end_matches('/').to_string();
        // The config validated the URL; a bad one (built by a test) fails at request time.
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{base_url}{path}")).unwrap_or_else(|_| {
                reqwest::Url::parse("http://invalid.invalid/").expect("static URL")
            })
        };
        let chat_url = url("/chat/completions");
        let completions_url = url("/completions");
        Self {
            kind,
            dialect,
            base_url,
            model: model.to_string(),
            client,
            api_key,
            defaults,
            chat_url,
            completions_url,
            lean: None,
        }
    }

    /// Streams through the lean HTTP/1.1 client where it applies (plain `http://`, no proxy
    /// in the environment): a chunk then costs one task and no channel hop (a gateway relays
    /// thousands a second). TLS and proxies keep reqwest.
    pub fn with_lean_streams(mut self, connect: std::time::Duration) -> Self {
        if super::lean::proxy_in_env() {
            return self;
        }
        if let Some(r) = self.sse_request(&ChatRequest::default()) {
            self.lean = Some(std::sync::Arc::new(super::lean::LeanClient::new(
                r.authority,
                connect,
            )));
        }
        self
    }

    /// The server root (the base URL without its `/v1`), where vLLM serves `/health`.
    pub fn root_url(&self) -> &str {
        self.base_url.strip_suffix("/v1").unwrap_or(&self.base_url)
    }

    fn body<'a>(&'a self, req: &'a ChatRequest, stream: bool) -> WireRequest<'a> {
        let (temperature, top_p, max_tokens) = self.defaults.apply(req);
        // OpenAI's legacy completions still take `max_tokens`.
        let raw = req.raw_prompt.as_deref();
        let (max_tokens, max_completion_tokens) = match self.dialect {
            Dialect::OpenAi if raw.is_none() => (None, max_tokens),
            _ => (max_tokens, None),
        };
        WireRequest {
            model: req.model.as_deref().unwrap_or(&self.model),
            messages: raw.is_none().then_some(&req.messages[..]),
            prompt: raw,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            temperature,
            top_p,
            max_tokens,
            max_completion_tokens,
            ignore_eos: (req.ignore_eos && self.dialect == Dialect::Vllm).then_some(true),
            stop: &req.stop,
            seed: req.seed,
        }
    }

    /// Where a request goes: chat, or a raw completion.
    fn url_for(&self, req: &ChatRequest) -> &reqwest::Url {
        if req.raw_prompt.is_some() {
            &self.completions_url
        } else {
            &self.chat_url
        }
    }

    fn post(&self, req: &ChatRequest, stream: bool) -> reqwest::RequestBuilder {
        // The URL was parsed once; a clone is a copy, not a parse (this is per request).
        let rb = self
            .client
            .post(self.url_for(req).clone())
            .json(&self.body(req, stream));
        self.auth(rb)
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => rb.bearer_auth(k.expose()),
            None => rb,
        }
    }
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a chat completion chunk")]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a choice")]
struct WireChoice {
    #[serde(default)]
    delta: Option<WireMessage>,
    #[serde(default)]
    message: Option<WireMessage>,
    /// A raw completion's text.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a message")]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a usage object")]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }
    }
}

/// Decodes OpenAI-style SSE chunks into events.
pub type SseChatDecoder = super::body::Units<SseChat>;

/// OpenAI's dialect of a streamed answer: one JSON chunk an SSE event, `[DONE]` at the end.
#[derive(Default)]
pub struct SseChat {
    parser: SseParser,
    done: bool,
    seen_any: bool,
}

impl SseChat {
    fn on_data(&mut self, data: &str, at: Instant, out: &mut VecDeque<Item>) -> bool {
        let data = data.trim();
        if data.starts_with("[DONE]") {
            self.done = true;
            return true;
        }
        self.seen_any = true;
        let chunk: WireChunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                let shown: String = data.chars().take(120).collect();
                out.push_back(Err(ProviderError::new(
                    ErrorClass::StreamBroken,
                    format!("malformed JSON chunk ({e}): {shown}"),
                )));
                return true;
            }
        };
        if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
            out.push_back(Err(classify_in_band(&json!({ "error": err }))));
            return true;
        }
        if let Some(c) = chunk.choices.into_iter().next() {
            let text = c
                .delta
                .or(c.message)
                .and_then(|m| m.content)
                .or(c.text)
                .unwrap_or_default();
            out.push_back(Ok(StreamEvent::Delta {
                text,
                at,
                finish_reason: c.finish_reason,
            }));
        }
        if let Some(u) = chunk.usage {
            out.push_back(Ok(StreamEvent::Usage {
                usage: u.into(),
                server: None,
                at,
            }));
        }
        false
    }
}

impl super::body::UnitDecoder for SseChat {
    type Unit = SseEvent;
    const UNIT: &'static str = "one SSE event";

    fn parse(&mut self, bytes: &[u8], units: &mut Vec<SseEvent>) -> bool {
        self.parser.push(bytes, units);
        self.parser.over_cap()
    }

    fn on_unit(&mut self, ev: &SseEvent, at: Instant, out: &mut VecDeque<Item>) -> bool {
        self.on_data(&ev.data, at, out)
    }

    fn truncated(&mut self) -> ProviderError {
        super::sse::truncated(self.parser.has_partial(), self.seen_any)
    }
}

#[async_trait]
impl Provider for OpenAiCompat {
    fn kind(&self) -> ProviderKind {
        self.kind
    }
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn model(&self) -> &str {
        &self.model
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        if let (Some(lean), Some(raw)) = (&self.lean, self.sse_request(req)) {
            return Ok(lean.send(&raw, true).await?.into_events());
        }
        let resp =
            super::send_ok(self.post(req, true).header("accept", "text/event-stream")).await?;
        Ok(decode_body(resp, SseChatDecoder::new()))
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let resp = super::send_ok(self.post(req, false)).await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_ANSWER_BYTES).await?;
        let w: WireChunk = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::new(ErrorClass::Decode, format!("unreadable response: {e}"))
        })?;
        if let Some(err) = w.error.filter(|e| !e.is_null()) {
            return Err(classify_in_band(&json!({ "error": err })));
        }
        let (text, finish_reason) = match w.choices.into_iter().next() {
            Some(c) => (
                c.message
                    .or(c.delta)
                    .and_then(|m| m.content)
                    .or(c.text)
                    .unwrap_or_default(),
                c.finish_reason,
            ),
            None => {
                return Err(ProviderError::new(
                    ErrorClass::Decode,
                    "response has no choices",
                ))
            }
        };
        Ok(ChatResponse {
            text,
            usage: w.usage.map(Into::into),
            finish_reason,
            model: w.model,
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let resp =
            super::send_ok(self.auth(self.client.get(format!("{}/models", self.base_url)))).await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_PAGE_BYTES).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::new(ErrorClass::Decode, e.to_string()))?;
        Ok(v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn embed(&self, inputs: &[String]) -> Result<super::Embeddings, ProviderError> {
        let body = json!({"model": self.model, "input": inputs});
        let resp = super::send_ok(
            self.auth(
                self.client
                    .post(format!("{}/embeddings", self.base_url))
                    .json(&body),
            ),
        )
        .await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_ANSWER_BYTES).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::new(ErrorClass::Decode, format!("unreadable embeddings: {e}"))
        })?;
        let mut data: Vec<(u64, Vec<f32>)> = v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        let vec = d["embedding"]
                            .as_array()
                            .map(|e| {
                                e.iter()
                                    .filter_map(|x| x.as_f64())
                                    .map(|x| x as f32)
                                    .collect()
                            })
                            .unwrap_or_default();
                        (d["index"].as_u64().unwrap_or(0), vec)
                    })
                    .collect()
            })
            .unwrap_or_default();
        data.sort_by_key(|(i, _)| *i);
        if data.len() != inputs.len() {
            return Err(ProviderError::new(
                ErrorClass::Decode,
                format!("{} embeddings for {} inputs", data.len(), inputs.len()),
            ));
        }
        Ok(super::Embeddings {
            vectors: data.into_iter().map(|(_, v)| v).collect(),
            prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            model: v["model"].as_str().map(String::from),
        })
    }

    fn metrics_url(&self) -> Option<String> {
        (self.dialect == Dialect::Vllm).then(|| format!("{}/metrics", self.root_url()))
    }

    fn sse_request(&self, req: &ChatRequest) -> Option<RawSseRequest> {
        let u = self.url_for(req);
        if u.scheme() != "http" {
            return None;
        }
        let host = match u.host()? {
            url::Host::Ipv6(a) => format!("[{a}]"),
            h => h.to_string(),
        };
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        Some(RawSseRequest {
            authority: format!("{host}:{}", u.port_or_known_default()?),
            path,
            body: serde_json::to_vec(&self.body(req, true)).ok()?,
            api_key: self.api_key.clone(),
        })
    }

    async fn health(&self) -> Result<(), ProviderError> {
        match self.dialect {
            Dialect::OpenAi => self.list_models().await.map(|_| ()),
            Dialect::Vllm => {
                let resp = self
                    .client
                    .get(format!("{}/health", self.root_url()))
                    .send()
                    .await
                    .map_err(|e| ProviderError::from_reqwest(&e, false))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(error_from_response(resp).await)
                }
            }
        }
    }
}
