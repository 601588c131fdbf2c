//! The two dialects a client may speak, as bytes on the wire: OpenAI's SSE chunks and JSON
//! objects, Ollama's NDJSON lines and objects, and each one's error shape (the one its SDK
//! raises: OpenAI `{"error": {message, type, param, code}}`, Ollama `{"error": "..."}`).
use crate::provider::{ChatResponse, Usage};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Ollama,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Ollama => "ollama",
        }
    }
}

/// What the client called: its answer's shape follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/v1/chat/completions`, `/api/chat`.
    Chat,
    /// `/v1/completions`: `choices[].text`.
    Completion,
    /// `/api/generate`: `response`.
    Generate,
}

/// An error body in the dialect's shape. `kind` is OpenAI's `type`; `code` its `code`.
pub fn error_body(
    d: Dialect,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> String {
    match d {
        Dialect::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
        }
        Dialect::Ollama => json!({ "error": message }),
    }
    .to_string()
}

/// `Retry-After` in whole seconds, rounded up (at least 1).
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs_f64().ceil() as u64).max(1)
}

/// What an answer's timings were, for Ollama's final object (nanoseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub total: Duration,
    /// Arrival to first content: Ollama's prompt evaluation, as the client can see it.
    pub prompt_eval: Duration,
    /// First content to the end.
    pub eval: Duration,
}

fn rfc3339_now() -> String {
    crate::time::rfc3339_nanos_now()
}

/// Streams one answer in the client's dialect.
pub struct Encoder {
    dialect: Dialect,
    shape: Shape,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    sent_role: bool,
    finish: Option<String>,
    usage: Option<Usage>,
    /// `data: {"id":...,"choices":[`, once the first chunk is written.
    head: String,
}

impl Encoder {
    pub fn new(dialect: Dialect, shape: Shape, model: &str, include_usage: bool) -> Self {
        let prefix = if shape == Shape::Completion {
            "cmpl"
        } else {
            "chatcmpl"
        };
        Self {
            dialect,
            shape,
            id: format!("{prefix}-{:016x}", rand::random::<u64>()),
            created: crate::time::unix_secs_now(),
            model: model.to_string(),
            include_usage,
            sent_role: false,
            finish: None,
            usage: None,
            head: String::new(),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self.dialect {
            Dialect::OpenAi => "text/event-stream; charset=utf-8",
            Dialect::Ollama => "application/x-ndjson",
        }
    }

    fn sse(out: &mut Vec<u8>, v: &serde_json::Value) {
        out.extend_from_slice(b"data: ");
        // A Value always serializes.
        let _ = serde_json::to_writer(&mut *out, v);
        out.extend_from_slice(b"\n\n");
    }

    fn line(out: &mut Vec<u8>, v: &serde_json::Value) {
        let _ = serde_json::to_writer(&mut *out, v);
        out.push(b'\n');
    }

    /// The chunk's fixed start (`data: {"id":...,"choices":[`), built once per answer.
    fn openai_head(&mut self) -> &str {
        if self.head.is_empty() {
            let object = match self.shape {
                Shape::Completion => "text_completion",
                _ => "chat.completion.chunk",
            };
            let mut h = format!(
                "data: {{\"id\":\"{}\",\"object\":\"{object}\",\"created\":{},\"model\":",
                self.id, self.created
            );
            // A string always serializes.
            h.push_str(&serde_json::to_string(&self.model).unwrap_or_default());
            h.push_str(",\"choices\":[");
            self.head = h;
        }
        &self.head
    }

    /// A piece of content (may be empty: a role chunk) and the finish reason, if it ends.
    /// Written straight to bytes: this runs once per forwarded chunk.
    pub fn delta(&mut self, text: &str, finish: Option<&str>, out: &mut Vec<u8>) {
        if finish.is_some() {
            self.finish = finish.map(String::from);
        }
        let str_into = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        match self.dialect {
            Dialect::OpenAi => {
                let usage_null = self.include_usage;
                let completion = self.shape == Shape::Completion;
                let first = !self.sent_role;
                self.sent_role = true;
                out.extend_from_slice(self.openai_head().as_bytes());
                if completion {
                    out.extend_from_slice(b"{\"index\":0,\"text\":");
                    str_into(out, text);
                } else if first {
                    out.extend_from_slice(
                        b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":",
                    );
                    str_into(out, text);
                    out.push(b'}');
                } else if text.is_empty() && finish.is_some() {
                    out.extend_from_slice(b"{\"index\":0,\"delta\":{}");
                } else {
                    out.extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":");
                    str_into(out, text);
                    out.push(b'}');
                }
                out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
                match finish {
                    Some(f) => str_into(out, f),
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b"}]");
                if usage_null {
                    out.extend_from_slice(b",\"usage\":null");
                }
                out.extend_from_slice(b"}\n\n");
            }
            Dialect::Ollama => {
                // Ollama's last line carries the finish; its content lines never do.
                if text.is_empty() {
                    return;
                }
                out.extend_from_slice(b"{\"model\":");
                str_into(out, &self.model);
                out.extend_from_slice(b",\"created_at\":\"");
                out.extend_from_slice(rfc3339_now().as_bytes());
                match self.shape {
                    Shape::Generate => out.extend_from_slice(b"\",\"response\":"),
                    _ => out
                        .extend_from_slice(b"\",\"message\":{\"role\":\"assistant\",\"content\":"),
                }
                str_into(out, text);
                if self.shape != Shape::Generate {
                    out.push(b'}');
                }
                out.extend_from_slice(b",\"done\":false}\n");
            }
        }
    }

    pub fn usage(&mut self, u: Usage) {
        self.usage = Some(u);
    }

    /// The normal end: OpenAI's usage chunk (when asked for) and `[DONE]`; Ollama's final
    /// object with its counts and durations.
    pub fn end(&mut self, t: Timings, out: &mut Vec<u8>) {
        match self.dialect {
            Dialect::OpenAi => {
                if self.include_usage {
                    if let Some(u) = self.usage {
                        let object = match self.shape {
                            Shape::Completion => "text_completion",
                            _ => "chat.completion.chunk",
                        };
                        Self::sse(
                            out,
                            &json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": [], "usage": usage_json(u)}),
                        );
                    }
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Dialect::Ollama => {
                let mut v = match self.shape {
                    Shape::Generate => {
                        json!({"model": self.model, "created_at": rfc3339_now(), "response": "", "done": true})
                    }
                    _ => {
                        json!({"model": self.model, "created_at": rfc3339_now(), "message": {"role": "assistant", "content": ""}, "done": true})
                    }
                };
                ollama_final(&mut v, self.finish.as_deref(), self.usage, t);
                Self::line(out, &v);
            }
        }
    }

    /// A failure after content was sent: in-band, so that the client's SDK raises it. OpenAI:
    /// an event with `error` and no `[DONE]`; Ollama: an `{"error": ...}` line.
    pub fn error(&mut self, message: &str, kind: &str, out: &mut Vec<u8>) {
        match self.dialect {
            Dialect::OpenAi => Self::sse(
                out,
                &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
            ),
            Dialect::Ollama => Self::line(out, &json!({ "error": message })),
        }
    }
}

fn usage_json(u: Usage) -> serde_json::Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.prompt_tokens + u.completion_tokens})
}

/// Ollama's final fields; zero counts are left out, as Ollama leaves them out.
fn ollama_final(v: &mut serde_json::Value, finish: Option<&str>, usage: Option<Usage>, t: Timings) {
    v["done_reason"] = json!(finish.unwrap_or("stop"));
    v["total_duration"] = json!(t.total.as_nanos() as u64);
    if let Some(u) = usage {
        if u.prompt_tokens > 0 {
            v["prompt_eval_count"] = json!(u.prompt_tokens);
        }
        if u.completion_tokens > 0 {
            v["eval_count"] = json!(u.completion_tokens);
        }
    }
    v["prompt_eval_duration"] = json!(t.prompt_eval.as_nanos() as u64);
    v["eval_duration"] = json!(t.eval.as_nanos() as u64);
}

/// A whole (non-streamed) answer in the client's dialect.
pub fn whole(d: Dialect, shape: Shape, model: &str, r: &ChatResponse, t: Timings) -> String {
    let finish = r.finish_reason.clone().unwrap_or_else(|| "stop".into());
    match d {
        Dialect::OpenAi => {
            let created = crate::time::unix_secs_now();
            let id = rand::random::<u64>();
            let mut v = match shape {
                Shape::Completion => {
                    json!({"id": format!("cmpl-{id:016x}"), "object": "text_completion", "created": created, "model": model, "choices": [{"index": 0, "text": r.text, "logprobs": null, "finish_reason": finish}]})
                }
                _ => {
                    json!({"id": format!("chatcmpl-{id:016x}"), "object": "chat.completion", "created": created, "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": r.text}, "logprobs": null, "finish_reason": finish}]})
                }
            };
            if let Some(u) = r.usage {
                v["usage"] = usage_json(u);
            }
            v.to_string()
        }
        Dialect::Ollama => {
            let mut v = match shape {
                Shape::Generate => {
                    json!({"model": model, "created_at": rfc3339_now(), "response": r.text, "done": true})
                }
                _ => {
                    json!({"model": model, "created_at": rfc3339_now(), "message": {"role": "assistant", "content": r.text}, "done": true})
                }
            };
            ollama_final(&mut v, Some(&finish), r.usage, t);
            v.to_string()
        }
    }
}
