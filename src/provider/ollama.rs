//! Ollama native client: `/api/chat` NDJSON, `/api/tags`, `/api/version`, `/api/ps`.
use super::body::{decode_body, Item};
use super::error::{classify_in_band, ErrorClass, ProviderError};
use super::ndjson::NdjsonParser;
use super::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderKind, SamplingDefaults,
    ServerTimings, StreamEvent, Usage,
};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct OllamaClient {
    base_url: String,
    model: String,
    client: reqwest::Client,
    defaults: SamplingDefaults,
}

impl OllamaClient {
    pub fn new(
        base_url: &str,
        model: &str,
        client: reqwest::Client,
        defaults: SamplingDefaults,
    ) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            client,
            defaults,
        }
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> serde_json::Value {
        let (temperature, top_p, max_tokens) = self.defaults.apply(req);
        let mut options = serde_json::Map::new();
        if let Some(n) = max_tokens {
            options.insert("num_predict".into(), json!(n));
        }
        if let Some(t) = temperature {
            options.insert("temperature".into(), json!(t));
        }
        if let Some(p) = top_p {
            options.insert("top_p".into(), json!(p));
        }
        if !req.stop.is_empty() {
            options.insert("stop".into(), json!(req.stop));
        }
        if let Some(s) = req.seed {
            options.insert("seed".into(), json!(s));
        }
        let model = req.model.as_deref().unwrap_or(&self.model);
        match &req.raw_prompt {
            Some(p) => {
                json!({"model": model, "prompt": p, "raw": true, "stream": stream, "options": options})
            }
            None => {
                json!({"model": model, "messages": req.messages, "stream": stream, "options": options})
            }
        }
    }

    /// `/api/generate` for a raw completion, `/api/chat` otherwise.
    fn url_for(&self, req: &ChatRequest) -> String {
        let path = if req.raw_prompt.is_some() {
            "/api/generate"
        } else {
            "/api/chat"
        };
        format!("{}{path}", self.base_url)
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, ProviderError> {
        let resp = super::send_ok(self.client.get(format!("{}{path}", self.base_url))).await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_PAGE_BYTES).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::new(ErrorClass::Decode, e.to_string()))
    }
}

#[derive(Deserialize, Default)]
struct Line {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    model: Option<String>,
    // Ollama omits zero-valued fields, so every count and duration is optional.
    total_duration: Option<u64>,
    load_duration: Option<u64>,
    prompt_eval_count: Option<u64>,
    prompt_eval_duration: Option<u64>,
    eval_count: Option<u64>,
    eval_duration: Option<u64>,
}

#[derive(Deserialize, Default)]
struct LineMessage {
    #[serde(default)]
    content: String,
}

impl Line {
    fn text(&mut self) -> String {
        match (self.message.take(), self.response.take()) {
            (Some(m), _) => m.content,
            (None, Some(r)) => r,
            _ => String::new(),
        }
    }
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_eval_count.unwrap_or(0),
            completion_tokens: self.eval_count.unwrap_or(0),
        }
    }
    fn timings(&self) -> ServerTimings {
        let ns = |v: Option<u64>| v.map(Duration::from_nanos);
        ServerTimings {
            total: ns(self.total_duration),
            load: ns(self.load_duration),
            prompt_eval: ns(self.prompt_eval_duration),
            eval: ns(self.eval_duration),
        }
    }
}

/// Decodes `/api/chat` (and `/api/generate`) NDJSON lines into events.
pub type NdjsonChatDecoder = super::body::Units<NdjsonChat>;

/// Ollama's dialect of a streamed answer: one JSON object a line.
#[derive(Default)]
pub struct NdjsonChat {
    parser: NdjsonParser,
    seen_any: bool,
}

impl NdjsonChat {
    fn on_line(&mut self, line: &str, at: Instant, out: &mut VecDeque<Item>) -> bool {
        self.seen_any = true;
        let mut l: Line = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                let shown: String = line.chars().take(120).collect();
                out.push_back(Err(ProviderError::new(
                    ErrorClass::StreamBroken,
                    format!("malformed NDJSON line ({e}): {shown}"),
                )));
                return true;
            }
        };
        if let Some(err) = l.error.take().filter(|e| !e.is_null()) {
            out.push_back(Err(classify_in_band(&json!({ "error": err }))));
            return true;
        }
        let text = l.text();
        if !l.done {
            out.push_back(Ok(StreamEvent::Delta {
                text,
                at,
                finish_reason: None,
            }));
            return false;
        }
        out.push_back(Ok(StreamEvent::Delta {
            text,
            at,
            finish_reason: l.done_reason.clone().or(Some("stop".into())),
        }));
        out.push_back(Ok(StreamEvent::Usage {
            usage: l.usage(),
            server: Some(l.timings()),
            at,
        }));
        true
    }
}

impl super::body::UnitDecoder for NdjsonChat {
    type Unit = String;
    const UNIT: &'static str = "one NDJSON line";

    fn parse(&mut self, bytes: &[u8], units: &mut Vec<String>) -> bool {
        self.parser.push(bytes, units);
        self.parser.over_cap()
    }

    fn on_unit(&mut self, line: &String, at: Instant, out: &mut VecDeque<Item>) -> bool {
        self.on_line(line, at, out)
    }

    fn truncated(&mut self) -> ProviderError {
        let what = if self.parser.finish().is_some() {
            "in the middle of a line"
        } else if self.seen_any {
            "before the `done: true` line"
        } else {
            "before any line"
        };
        ProviderError::new(
            ErrorClass::StreamBroken,
            format!("the server closed the stream {what}"),
        )
    }
}

#[async_trait]
impl Provider for OllamaClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn model(&self) -> &str {
        &self.model
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let resp = super::send_ok(
            self.client
                .post(self.url_for(req))
                .json(&self.body(req, true)),
        )
        .await?;
        Ok(decode_body(resp, NdjsonChatDecoder::new()))
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let resp = super::send_ok(
            self.client
                .post(self.url_for(req))
                .json(&self.body(req, false)),
        )
        .await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_ANSWER_BYTES).await?;
        let mut l: Line = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::new(ErrorClass::Decode, format!("unreadable response: {e}"))
        })?;
        if let Some(err) = l.error.take().filter(|e| !e.is_null()) {
            return Err(classify_in_band(&json!({ "error": err })));
        }
        Ok(ChatResponse {
            text: l.text(),
            usage: Some(l.usage()),
            finish_reason: l.done_reason.clone(),
            model: l.model.clone(),
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let v = self.get_json("/api/tags").await?;
        Ok(names(&v))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.get_json("/api/version").await.map(|_| ())
    }

    async fn embed(&self, inputs: &[String]) -> Result<super::Embeddings, ProviderError> {
        let resp = super::send_ok(
            self.client
                .post(format!("{}/api/embed", self.base_url))
                .json(&json!({"model": self.model, "input": inputs})),
        )
        .await?;
        let bytes = super::body::read_capped(resp, super::body::MAX_ANSWER_BYTES).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::new(ErrorClass::Decode, format!("unreadable embeddings: {e}"))
        })?;
        let vectors: Vec<Vec<f32>> = v["embeddings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        e.as_array()
                            .map(|e| {
                                e.iter()
                                    .filter_map(|x| x.as_f64())
                                    .map(|x| x as f32)
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if vectors.len() != inputs.len() {
            return Err(ProviderError::new(
                ErrorClass::Decode,
                format!("{} embeddings for {} inputs", vectors.len(), inputs.len()),
            ));
        }
        Ok(super::Embeddings {
            vectors,
            prompt_tokens: v["prompt_eval_count"].as_u64().unwrap_or(0),
            model: v["model"].as_str().map(String::from),
        })
    }

    async fn loaded_models(&self) -> Option<Vec<String>> {
        self.get_json("/api/ps").await.ok().map(|v| names(&v))
    }
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["models"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().or(m["model"].as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
