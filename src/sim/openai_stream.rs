//! The simulator's streamed OpenAI-style body (chat chunks, or a raw completion's text
//! chunks), one write at a time on an absolute schedule, with the faults of its plan.
use super::fault::Plan;
use super::{text, Flavor, RequestGuard, SimState};
use axum::body::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// What one chat or completion request asked for, once validated.
pub(super) struct Ask {
    /// A raw completion (`/v1/completions`): `text` choices, no role chunk.
    pub(super) text: bool,
    pub(super) n: u32,
    pub(super) finish: &'static str,
    pub(super) prompt_tokens: u64,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
}

/// Generates the SSE body one write at a time, on an absolute schedule.
pub(super) struct StreamGen {
    pub(super) st: Arc<SimState>,
    pub(super) id: String,
    pub(super) created: u64,
    /// When the request came (its TTFT counts from here; generation from `t0`).
    pub(super) arrived: Instant,
    /// Held while it generates.
    pub(super) _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    pub(super) t0: Instant,
    pub(super) ask: Ask,
    pub(super) plan: Plan,
    /// Index of the next content chunk.
    pub(super) next: u32,
    pub(super) last_at: Instant,
    pub(super) guard: Option<RequestGuard>,
    pub(super) stalled: bool,
}

type Chunk = Result<Bytes, std::io::Error>;

impl Drop for StreamGen {
    /// Its client left mid-answer: a `linger` plan goes on generating (running, holding
    /// its slot) until the answer would have ended.
    fn drop(&mut self) {
        if !self.plan.linger {
            return;
        }
        let Some(guard) = self.guard.take() else {
            return;
        };
        let cfg = &self.st.cfg;
        let end = self.t0 + cfg.ttft + cfg.itl * self.ask.n;
        let slot = self._slot.take();
        let finish = self.ask.finish;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep_until(end.into()).await;
                guard.complete(finish);
                drop(slot);
            });
        }
    }
}

impl StreamGen {
    fn head(&self) -> String {
        let object = if self.ask.text {
            "text_completion"
        } else {
            "chat.completion.chunk"
        };
        format!(
            r#"{{"id":"{}","object":"{object}","created":{},"model":"{}""#,
            self.id, self.created, self.st.cfg.model
        )
    }

    /// A raw completion's chunk: its text, and the finish reason on the last.
    fn text_chunk(&self, content: &str, finish: Option<&str>) -> String {
        let finish = finish.map_or("null".to_string(), |f| format!("\"{f}\""));
        format!(
            "data: {},\"choices\":[{{\"index\":0,\"text\":{content},\"logprobs\":null,\"finish_reason\":{finish},\"stop_reason\":null}}]}}\n\n",
            self.head()
        )
    }

    pub(super) async fn step(&mut self) -> Option<Chunk> {
        self.guard.as_ref()?;
        let i = self.next;
        let cfg = &self.st.cfg;
        let at = self.t0 + cfg.ttft + cfg.itl * i;
        if let Err(e) = self.plan.before_chunk(i, at, &mut self.stalled).await {
            self.guard = None;
            return Some(Err(e));
        }
        if self.plan.truncate_after == Some(i) {
            self.guard = None;
            return None;
        }
        let now = Instant::now();
        {
            let mut m = self.st.metrics();
            if i == 0 {
                m.prompt_tokens += self.ask.prompt_tokens;
                m.observe_ttft(now.duration_since(self.arrived).as_secs_f64());
            } else {
                m.observe_itl(now.duration_since(self.last_at).as_secs_f64());
            }
            if i < self.ask.n {
                m.generation_tokens += 1;
            }
        }
        self.last_at = now;
        self.next += 1;
        let openai = cfg.flavor == Flavor::Openai;
        let usage_null = if openai && self.ask.include_usage {
            r#","usage":null"#
        } else {
            ""
        };
        let mut out = String::with_capacity(512);
        if i == 0 && !self.ask.text {
            let role = if openai {
                r#"{"role":"assistant","content":"","refusal":null}"#
            } else {
                r#"{"role":"assistant","content":""}"#
            };
            let tail = if openai {
                ""
            } else {
                r#","prompt_token_ids":null,"prompt_text":null"#
            };
            out.push_str(&format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{role},\"logprobs\":null,\"finish_reason\":null}}]{usage_null}{tail}}}\n\n",
                self.head()
            ));
        }
        if self.ask.n == 0 {
            out.push_str(&self.tail(openai));
            return Some(Ok(Bytes::from(out)));
        }
        let last = i + 1 == self.ask.n;
        let content = serde_json::to_string(&text::token(i)).unwrap_or_default();
        if self.plan.oversize_at == Some(i) {
            out.push_str("data: ");
            out.push_str(&"x".repeat(super::fault::OVERSIZE_BYTES));
        } else if self.plan.malformed_at == Some(i) {
            out.push_str(&format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}}\n\n",
                self.head()
            ));
        } else if self.ask.text {
            out.push_str(&self.text_chunk(&content, last.then_some(self.ask.finish)));
        } else if openai {
            out.push_str(&format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}},\"logprobs\":null,\"finish_reason\":null}}]{usage_null}}}\n\n",
                self.head()
            ));
        } else {
            let finish = if last {
                format!(r#""{}","stop_reason":null"#, self.ask.finish)
            } else {
                "null".into()
            };
            out.push_str(&format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}},\"logprobs\":null,\"finish_reason\":{finish},\"token_ids\":null}}]}}\n\n",
                self.head()
            ));
        }
        if last {
            out.push_str(&self.tail(openai));
        }
        Some(Ok(Bytes::from(out)))
    }

    /// Finish chunk (OpenAI), usage chunk (when asked) and `[DONE]`; marks the request done.
    fn tail(&mut self, openai: bool) -> String {
        let mut out = String::new();
        let usage_null = if openai && self.ask.include_usage {
            r#","usage":null"#
        } else {
            ""
        };
        if self.ask.n == 0 && self.ask.text {
            out.push_str(&self.text_chunk("\"\"", Some(self.ask.finish)));
        } else if openai && !self.ask.text {
            out.push_str(&format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{}\"}}]{usage_null}}}\n\n",
                self.head(),
                self.ask.finish
            ));
        }
        if self.ask.include_usage {
            let (p, n) = (self.ask.prompt_tokens, u64::from(self.ask.n));
            let fp = if openai { "fp_sim" } else { "vllm-0.32.0-sim" };
            out.push_str(&format!(
                "data: {},\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"total_tokens\":{},\"completion_tokens\":{n}}},\"system_fingerprint\":\"{fp}\"}}\n\n",
                self.head(),
                p + n
            ));
        }
        out.push_str("data: [DONE]\n\n");
        if let Some(mut g) = self.guard.take() {
            g.finish = Some(self.ask.finish);
        }
        out
    }
}
