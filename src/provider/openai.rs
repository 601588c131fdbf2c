//! OpenAI-compatible client for vLLM and OpenAI: `/v1/chat/completions` with SSE streaming.
use super::body::{decode_body, BodyDecoder, Item};
use super::error::{classify_in_band, ErrorClass, ProviderError};
use super::secret::Secret;
use super::sse::{SseEvent, SseParser};
use super::{
    error_from_response, ChatRequest, ChatResponse, EventStream, Provider, ProviderKind,
    SamplingDefaults, StreamEvent, Usage,
};
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
        Self {
            kind,
            dialect,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            client,
            api_key,
            defaults,
        }
    }

    /// The server root (the base URL without its `/v1`), where vLLM serves `/health`.
    pub fn root_url(&self) -> &str {
        self.base_url.strip_suffix("/v1").unwrap_or(&self.base_url)
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> serde_json::Value {
        let (temperature, top_p, max_tokens) = self.defaults.apply(req);
        let mut b = json!({
            "model": req.model.as_deref().unwrap_or(&self.model),
            "messages": req.messages,
            "stream": stream,
        });
        let o = b.as_object_mut().expect("object literal");
        if stream {
            o.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if let Some(t) = temperature {
            o.insert("temperature".into(), json!(t));
        }
        if let Some(p) = top_p {
            o.insert("top_p".into(), json!(p));
        }
        if let Some(n) = max_tokens {
            let field = match self.dialect {
                Dialect::OpenAi => "max_completion_tokens",
                Dialect::Vllm => "max_tokens",
            };
            o.insert(field.into(), json!(n));
        }
        if req.ignore_eos && self.dialect == Dialect::Vllm {
            o.insert("ignore_eos".into(), json!(true));
        }
        b
    }

    fn post(&self, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let rb = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(body);
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
struct WireChoice {
    #[serde(default)]
    delta: Option<WireMessage>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
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
#[derive(Default)]
pub struct SseChatDecoder {
    parser: SseParser,
    events: Vec<SseEvent>,
    done: bool,
    seen_any: bool,
}

impl SseChatDecoder {
    pub fn new() -> Self {
        Self::default()
    }

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

impl BodyDecoder for SseChatDecoder {
    fn push(&mut self, bytes: &[u8], at: Instant, out: &mut VecDeque<Item>) -> bool {
        self.parser.push(bytes, &mut self.events);
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            if self.on_data(&ev.data, at, out) {
                return true;
            }
        }
        self.events = events;
        self.events.clear();
        false
    }

    fn truncated(&mut self) -> ProviderError {
        let what = if self.parser.has_partial() {
            "in the middle of an event"
        } else if self.seen_any {
            "without `data: [DONE]`"
        } else {
            "before any event"
        };
        ProviderError::new(
            ErrorClass::StreamBroken,
            format!("the server closed the stream {what}"),
        )
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
        let resp = self
            .post(&self.body(req, true))
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, false))?;
        if !resp.status().is_success() {
            return Err(error_from_response(resp).await);
        }
        Ok(decode_body(resp, SseChatDecoder::new()))
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let resp = self
            .post(&self.body(req, false))
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, false))?;
        if !resp.status().is_success() {
            return Err(error_from_response(resp).await);
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, true))?;
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
        let resp = self
            .auth(self.client.get(format!("{}/models", self.base_url)))
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, false))?;
        if !resp.status().is_success() {
            return Err(error_from_response(resp).await);
        }
        let v: serde_json::Value = resp
            .json()
            .await
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

    fn metrics_url(&self) -> Option<String> {
        (self.dialect == Dialect::Vllm).then(|| format!("{}/metrics", self.root_url()))
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
