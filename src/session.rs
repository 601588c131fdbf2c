//! A chat conversation and its streamed answers, for the console (or any front end): the
//! history, the request for the next turn, one streaming task per answer (tagged with an id,
//! so a cancelled answer's late events can be told apart), and a Markdown export.
use crate::provider::router::{Attempt, ServedBy};
use crate::provider::timing::{ms, AnswerTiming, Seen};
use crate::provider::{ChatRequest, Message, Router, StreamEvent, Usage};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Sampling settings the operator can change between turns; unset ones are left to the
/// route's `params` in the config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatParams {
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// What is known about one answer once it ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnswerMeta {
    pub route: String,
    pub served_by: Option<ServedBy>,
    /// Targets that failed before the one that answered (fallback).
    pub attempts: Vec<Attempt>,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    /// Decode speed: tokens after the first over the time they took.
    pub tokens_per_s: Option<f64>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub error: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub user: String,
    pub answer: String,
    pub meta: AnswerMeta,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    pub system: String,
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// The request for a new user message: system prompt, the history, then the message.
    pub fn request(&self, user: &str, params: &ChatParams) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.turns.len() * 2 + 2);
        if !self.system.trim().is_empty() {
            messages.push(Message::system(self.system.clone()));
        }
        for t in &self.turns {
            // A failed answer is not part of what the model said.
            if t.meta.error.is_some() && t.answer.is_empty() {
                continue;
            }
            messages.push(Message::user(t.user.clone()));
            messages.push(Message::assistant(t.answer.clone()));
        }
        messages.push(Message::user(user.to_string()));
        ChatRequest {
            messages,
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            ..ChatRequest::default()
        }
    }

    pub fn to_markdown(&self, title: &str) -> String {
        let mut o = format!("# {title}\n\n");
        if !self.system.trim().is_empty() {
            o.push_str(&format!("**System:** {}\n\n", self.system.trim()));
        }
        for t in &self.turns {
            o.push_str(&format!("## User\n\n{}\n\n", t.user.trim_end()));
            let m = &t.meta;
            let who = m
                .served_by
                .as_ref()
                .map(|s| format!("{} ({}, {})", s.route, s.model, s.base_url))
                .unwrap_or_else(|| m.route.clone());
            o.push_str(&format!(
                "## Assistant · {who}\n\n{}\n\n",
                t.answer.trim_end()
            ));
            let mut facts = Vec::new();
            if let Some(x) = m.ttft_ms {
                facts.push(format!("TTFT {x:.0} ms"));
            }
            if let Some(x) = m.tokens_per_s {
                facts.push(format!("{x:.1} tok/s"));
            }
            if let Some(u) = m.usage {
                facts.push(format!(
                    "{} tokens in, {} out",
                    u.prompt_tokens, u.completion_tokens
                ));
            }
            for a in &m.attempts {
                facts.push(format!("fell back from {} ({})", a.route, a.class));
            }
            if m.cancelled {
                facts.push("cancelled".into());
            }
            if let Some(e) = &m.error {
                facts.push(format!("error: {e}"));
            }
            if !facts.is_empty() {
                o.push_str(&format!("_{}_\n\n", facts.join(" · ")));
            }
        }
        o
    }
}

/// Events of one streamed answer, each carrying the answer's id.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The router committed to a target (after any fallback).
    Started {
        id: u64,
        served_by: ServedBy,
        attempts: Vec<Attempt>,
    },
    /// The first event of the answer arrived this long after the request was sent.
    FirstToken { id: u64, ttft_ms: f64 },
    /// New text; several chunks may be joined when the receiver is slower than the server.
    Delta { id: u64, text: String },
    /// The answer ended (well, or with an in-band error after content).
    Finished { id: u64, meta: Box<AnswerMeta> },
}

impl ChatEvent {
    pub fn id(&self) -> u64 {
        match self {
            ChatEvent::Started { id, .. }
            | ChatEvent::FirstToken { id, .. }
            | ChatEvent::Delta { id, .. }
            | ChatEvent::Finished { id, .. } => *id,
        }
    }
}

/// Streams one answer in a task of its own. Aborting the handle drops the stream, which
/// closes the connection: the server stops generating.
pub fn spawn_answer(
    router: Arc<Router>,
    route: String,
    req: ChatRequest,
    id: u64,
    tx: mpsc::Sender<ChatEvent>,
) -> tokio::task::AbortHandle {
    let (watch_tx, watch_route) = (tx.clone(), route.clone());
    let task = tokio::spawn(async move {
        let meta = answer(&router, route, &req, id, &tx).await;
        if let Some(meta) = meta {
            let _ = tx.send(ChatEvent::Finished { id, meta }).await;
        }
    });
    let handle = task.abort_handle();
    // A panic in the answer's task still ends the answer, so no front end waits for good.
    tokio::spawn(async move {
        if let Err(e) = task.await {
            if e.is_panic() {
                let meta = AnswerMeta {
                    route: watch_route,
                    error: Some("internal error: the answer's task panicked (see the log)".into()),
                    ..AnswerMeta::default()
                };
                let _ = watch_tx
                    .send(ChatEvent::Finished {
                        id,
                        meta: Box::new(meta),
                    })
                    .await;
            }
        }
    });
    handle
}

/// The receiver went away: the answer is dropped, and with it the connection.
struct Gone;

/// One answer, from the route's commit to its end: what `Finished` carries, or `None` when
/// the receiver went away first.
async fn answer(
    router: &Router,
    route: String,
    req: &ChatRequest,
    id: u64,
    tx: &mpsc::Sender<ChatEvent>,
) -> Option<Box<AnswerMeta>> {
    let started = Instant::now();
    let mut meta = Box::new(AnswerMeta {
        route: route.clone(),
        ..AnswerMeta::default()
    });
    let mut rs = match router.chat_stream(Some(&route), req).await {
        Ok(rs) => rs,
        Err(f) => {
            meta.attempts = f.attempts.clone();
            meta.error = Some(f.error.to_string());
            meta.e2e_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            return Some(meta);
        }
    };
    meta.served_by = Some(rs.served_by.clone());
    meta.attempts = rs.attempts.clone();
    let commit = ChatEvent::Started {
        id,
        served_by: rs.served_by.clone(),
        attempts: rs.attempts.clone(),
    };
    tx.send(commit).await.ok()?;
    let mut timing = AnswerTiming::new(rs.started);
    if let Err(e) = relay(&mut rs.stream, &mut timing, id, tx).await.ok()? {
        meta.error = Some(e);
    }
    meta.ttft_ms = timing.ttft().map(ms);
    meta.e2e_ms = Some(ms(timing.e2e().unwrap_or_else(|| rs.started.elapsed())));
    meta.tokens_per_s = timing.decode_tokens_per_s();
    meta.usage = timing.usage;
    meta.finish_reason = timing.finish_reason.take();
    Some(meta)
}

/// The stream's text to the receiver: its first token said once, then the text, joined
/// while the receiver is slower than the server. Ends with the stream's own error, if any.
async fn relay(
    stream: &mut crate::provider::EventStream,
    timing: &mut AnswerTiming,
    id: u64,
    tx: &mpsc::Sender<ChatEvent>,
) -> Result<Result<(), String>, Gone> {
    let mut pending = String::new();
    let mut ended = Ok(());
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                ended = Err(e.to_string());
                break;
            }
        };
        if timing.record(&ev) == Seen::First {
            let ttft_ms = timing.ttft().map_or(0.0, ms);
            let first = ChatEvent::FirstToken { id, ttft_ms };
            tx.send(first).await.map_err(|_| Gone)?;
        }
        let StreamEvent::Delta { text, .. } = ev else {
            continue;
        };
        pending.push_str(&text);
        if !pending.is_empty() {
            let text = std::mem::take(&mut pending);
            match tx.try_send(ChatEvent::Delta { id, text }) {
                Ok(()) => {}
                // A slow receiver: keep joining text and try again at the next chunk.
                Err(mpsc::error::TrySendError::Full(ChatEvent::Delta { text, .. })) => {
                    pending = text
                }
                Err(_) => return Err(Gone),
            }
        }
    }
    if !pending.is_empty() {
        let last = ChatEvent::Delta { id, text: pending };
        tx.send(last).await.map_err(|_| Gone)?;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_system_history_and_the_new_message() {
        let mut c = Conversation {
            system: "be brief".into(),
            turns: vec![],
        };
        c.turns.push(Turn {
            user: "hi".into(),
            answer: "hello".into(),
            meta: AnswerMeta::default(),
        });
        c.turns.push(Turn {
            user: "lost".into(),
            answer: String::new(),
            meta: AnswerMeta {
                error: Some("connect".into()),
                ..AnswerMeta::default()
            },
        });
        let r = c.request(
            "and now?",
            &ChatParams {
                temperature: Some(0.2),
                max_tokens: Some(9),
            },
        );
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(r.messages[3].content, "and now?");
        assert_eq!((r.temperature, r.max_tokens), (Some(0.2), Some(9)));
        let md = c.to_markdown("Chat");
        assert!(
            md.contains("**System:** be brief")
                && md.contains("## User\n\nhi")
                && md.contains("error: connect"),
            "{md}"
        );
    }
}
