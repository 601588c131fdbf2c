//! Request, response and stream-event types shared by every provider.
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// What the caller asks for. Unset sampling fields fall back to the route's `params`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Overrides the target's configured model name.
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Ask for exactly `max_tokens` tokens where the server supports it (vLLM).
    pub ignore_eos: bool,
    /// Stop sequences (OpenAI's `stop`, Ollama's `options.stop`).
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    /// A raw completion: this prompt as it is, with no chat template (OpenAI's
    /// `/v1/completions`, Ollama's `generate` with `raw`). `messages` are then unused.
    pub raw_prompt: Option<String>,
}

impl ChatRequest {
    pub fn prompt(prompt: impl Into<String>) -> Self {
        Self {
            messages: vec![Message::user(prompt)],
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Server-side timings that Ollama reports (converted from nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTimings {
    pub total: Option<Duration>,
    pub load: Option<Duration>,
    pub prompt_eval: Option<Duration>,
    pub eval: Option<Duration>,
}

/// One decoded piece of a streamed answer, stamped with the instant its bytes arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk with non-empty `choices` (OpenAI/vLLM) or a `done:false` line (Ollama).
    /// `text` may be empty: vLLM's role chunk and UTF-8 hold-back chunks carry none.
    Delta {
        text: String,
        at: Instant,
        finish_reason: Option<String>,
    },
    /// Token counts from the server (usage chunk, or Ollama's final line).
    Usage {
        usage: Usage,
        server: Option<ServerTimings>,
        at: Instant,
    },
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
}

/// Which client speaks to a target; named in the config, so defined there.
pub use crate::config::ProviderKind;

/// Embedding vectors, one per input, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: u64,
    pub model: Option<String>,
}
