//! One request as the Traffic list shows it, built from its events: arrival, attempts,
//! first token, end.
use super::wire::{Arrival, Ended};
use serde::Serialize;

/// One request as the list shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub id: u64,
    /// Unix time of its arrival, ms.
    pub at_ms: u64,
    pub client: String,
    pub dialect: String,
    /// The model the client asked for.
    pub model: String,
    /// The route it resolved to, then the one that served it.
    pub route: String,
    pub served_by: Option<String>,
    pub server: Option<String>,
    /// `tiny_qwen x connect -> ollama ok`, built as the attempts happen.
    pub chain: String,
    /// Each failed attempt: route, class (and status), message.
    pub failures: Vec<String>,
    /// The attempt now running, `n/budget`.
    pub attempt: Option<(u32, u32)>,
    /// queued, waiting_headers, waiting_first_token, streaming, done, error, cancelled.
    pub stage: String,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub duration_ms: Option<f64>,
    pub queue_ms: Option<f64>,
    pub upstream_ms: Option<f64>,
    pub overhead_us: Option<f64>,
    /// Since arrival: the answering attempt began, and its response head came.
    pub answer_ms: Option<f64>,
    pub headers_ms: Option<f64>,
    pub class: Option<String>,
    pub status: Option<u16>,
}

impl Row {
    pub(super) fn arrived(a: Arrival) -> Self {
        Self {
            id: a.id,
            at_ms: a.at_ms,
            client: a.client,
            dialect: a.dialect.into_owned(),
            model: a.model,
            route: a.route,
            stage: "queued".into(),
            ..Self::default()
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self.stage.as_str(), "done" | "error" | "cancelled")
    }

    /// Where its time went, in ms, as far as it is known: queue, earlier (failed) attempts,
    /// connect and response head, first token, decode; and our own overhead in µs.
    pub fn split(&self) -> Vec<(&'static str, Option<f64>)> {
        let q = self.queue_ms;
        let answer = self.answer_ms;
        let head = self.headers_ms;
        let d = |a: Option<f64>, b: Option<f64>| Some((a? - b?).max(0.0));
        vec![
            ("queue", q),
            ("earlier attempts", d(answer, q)),
            ("connect + headers", d(head, answer)),
            ("first token", d(self.ttft_ms, head)),
            ("decode", d(self.duration_ms, self.ttft_ms)),
        ]
    }

    /// Its end as the feed told it: the outcome, who served it, its timings.
    pub(super) fn ended(&mut self, e: &Ended) {
        self.stage = match e.outcome.as_ref() {
            "ok" => "done",
            "cancelled" => "cancelled",
            _ => "error",
        }
        .into();
        self.served_by = Some(e.route.clone());
        self.server = e.server.clone();
        if !e.chain.is_empty() {
            self.chain = e.chain.clone();
        }
        // Broken after its first token: the chain ends in the break, not in `ok`.
        if e.outcome == "error" && e.status == 200 {
            let why = e.class.as_deref().unwrap_or("error");
            self.chain = format!("{} -> broken: {why}", self.chain);
        }
        self.attempt = None;
        self.ttft_ms = e.ttft_ms.or(self.ttft_ms);
        self.prompt_tokens = e.prompt_tokens;
        self.completion_tokens = e.completion_tokens;
        self.duration_ms = Some(e.duration_ms);
        self.queue_ms = Some(e.queue_ms);
        self.upstream_ms = Some(e.upstream_ms);
        self.overhead_us = Some(e.overhead_us);
        self.status = Some(e.status);
        self.class = e.class.clone();
        self.answer_ms = e.answer_ms;
        self.headers_ms = e.headers_ms;
    }
}
