//! One request's account: where it is (queued, waiting on upstream, streaming), its times,
//! who served it and after which failed attempts. It is counted once however it ends
//! (metrics, the feed's end event, a log line for failures), and dropped before it was
//! finished means its client went away: counted as cancelled in the stage it was in.
use super::dialect::Dialect;
use super::errors::error_response;
use super::events::{Arrival, Ended, Event};
use super::metrics::Finished;
use super::Shared;
use crate::provider::router::Step;
use crate::provider::router::{Attempt, RouteFailure, ServedBy};
use crate::provider::{ErrorClass, Usage};
use axum::response::Response;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who asks, as the account records it.
pub struct Who<'a> {
    pub dialect: Dialect,
    pub asked: &'a str,
    pub route: &'a str,
    pub client: &'a str,
    pub stream: bool,
}

/// Where a request is. A stream is `Streaming` from its first token; a whole answer is
/// `Streaming` while the gateway collects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Queued,
    /// Connecting to a target, or waiting for its response head.
    Headers,
    /// The target answered with its headers; its first token is awaited.
    FirstToken,
    Streaming,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Headers => "waiting_headers",
            Stage::FirstToken => "waiting_first_token",
            Stage::Streaming => "streaming",
        }
    }
}

/// The stage, set by the router's watcher while the request awaits it.
#[derive(Debug)]
pub struct StageCell(AtomicU8);

impl StageCell {
    pub fn get(&self) -> Stage {
        match self.0.load(Ordering::Relaxed) {
            0 => Stage::Queued,
            1 => Stage::Headers,
            2 => Stage::FirstToken,
            _ => Stage::Streaming,
        }
    }
    pub fn set(&self, s: Stage) {
        self.0.store(s as u8, Ordering::Relaxed);
    }
}

/// One request's account: its times, where it is, and who served it. Dropped before it
/// was finished means the client went away.
pub struct Tracker {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub dialect: Dialect,
    pub asked: String,
    pub route: String,
    pub arrived: Instant,
    pub stage: StageCell,
    /// Live readers follow this request's steps (see the feed's `begin`).
    followed: bool,
    /// Since arrival, µs + 1 (0: not yet): the last attempt's start, and its response head.
    last_try_us: AtomicU64,
    headers_us: AtomicU64,
    pub queue: Duration,
    pub upstream: Duration,
    pub first: Option<Instant>,
    pub served: Option<ServedBy>,
    pub chain: String,
    pub usage: Usage,
    pub done: bool,
}

fn chain(attempts: &[Attempt], end: &str) -> String {
    let mut parts: Vec<String> = attempts
        .iter()
        .map(|a| match a.status {
            Some(s) => format!("{} x {} {s}", a.route, a.class),
            None => format!("{} x {}", a.route, a.class),
        })
        .collect();
    parts.push(end.to_string());
    parts.join(" -> ")
}

impl Tracker {
    /// A request's account opens: its id, and the start event on the feed.
    pub fn begin(shared: &Arc<Shared>, who: Who<'_>, arrived: Instant) -> Self {
        let id = shared.next_id();
        let at_ms = crate::time::unix_now_ms();
        let followed = shared.feed.begin(
            Event::Start(Arrival {
                id,
                at_ms,
                client: who.client.to_string(),
                dialect: who.dialect.as_str().into(),
                model: who.asked.to_string(),
                route: who.route.to_string(),
                stream: who.stream,
            }),
            at_ms,
        );
        Self {
            followed,
            shared: shared.clone(),
            id,
            dialect: who.dialect,
            asked: who.asked.to_string(),
            route: who.route.to_string(),
            arrived,
            stage: StageCell(AtomicU8::new(Stage::Queued as u8)),
            last_try_us: AtomicU64::new(0),
            headers_us: AtomicU64::new(0),
            queue: Duration::ZERO,
            upstream: Duration::ZERO,
            first: None,
            served: None,
            chain: String::new(),
            usage: Usage::default(),
            done: false,
        }
    }

    /// A slot, or the 429 the client gets (counted) when none is to be had.
    pub async fn admit(&mut self) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
        let shared = self.shared.clone();
        match shared.admission.enter().await {
            Ok(p) => {
                self.queue = self.arrived.elapsed();
                shared.metrics.queue_wait(self.queue.as_secs_f64());
                self.stage.set(Stage::Headers);
                Ok(p)
            }
            Err(why) => {
                let reason = match why {
                    super::admission::Refused::QueueFull => "queue_full",
                    super::admission::Refused::Timeout => "queue_timeout",
                };
                shared.metrics.refused(reason);
                shared.feed.refused();
                self.queue = self.arrived.elapsed();
                self.chain = format!("refused: {reason}");
                self.finish("error", Some(reason), 429);
                Err(error_response(
                    self.dialect,
                    429,
                    &why.message(&shared.admission),
                    Some(reason),
                    Some(Duration::from_secs(1)),
                ))
            }
        }
    }

    pub fn ttft_ms(&self) -> Option<f64> {
        self.first
            .map(|f| f.saturating_duration_since(self.arrived).as_secs_f64() * 1000.0)
    }

    fn mark(&self, at: &AtomicU64) {
        at.store(
            self.arrived.elapsed().as_micros() as u64 + 1,
            Ordering::Relaxed,
        );
    }

    fn since_arrival_ms(at: &AtomicU64) -> Option<f64> {
        match at.load(Ordering::Relaxed) {
            0 => None,
            us => Some((us - 1) as f64 / 1000.0),
        }
    }

    /// Counts the request once: metrics, the feed's end event, and a log line for failures.
    pub fn finish(&mut self, outcome: &'static str, class: Option<&str>, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        let total = self.arrived.elapsed();
        let overhead = total.saturating_sub(self.queue + self.upstream);
        let route = self
            .served
            .as_ref()
            .map_or(self.route.clone(), |s| s.route.clone());
        let sh = &self.shared;
        let stage = self.stage.get();
        if outcome == "cancelled" {
            sh.metrics.cancelled(stage.as_str());
        }
        sh.metrics.finished(&Finished {
            route: &route,
            model: &self.asked,
            dialect: self.dialect.as_str(),
            status,
            ttft_s: self.ttft_ms().map(|t| t / 1000.0),
            upstream_s: (stage != Stage::Queued).then_some(self.upstream.as_secs_f64()),
            overhead_s: (outcome == "ok").then_some(overhead.as_secs_f64()),
            prompt_tokens: self.usage.prompt_tokens,
            completion_tokens: self.usage.completion_tokens,
        });
        sh.feed.step(
            Event::End(Box::new(Ended {
                id: self.id,
                outcome: outcome.into(),
                class: class.map(String::from),
                status,
                route,
                server: self.served.as_ref().map(|s| s.base_url.clone()),
                chain: self.chain.clone(),
                prompt_tokens: self.usage.prompt_tokens,
                completion_tokens: self.usage.completion_tokens,
                ttft_ms: self.ttft_ms(),
                duration_ms: total.as_secs_f64() * 1000.0,
                queue_ms: self.queue.as_secs_f64() * 1000.0,
                upstream_ms: self.upstream.as_secs_f64() * 1000.0,
                overhead_us: overhead.as_secs_f64() * 1e6,
                answer_ms: Self::since_arrival_ms(&self.last_try_us),
                headers_ms: Self::since_arrival_ms(&self.headers_us),
                stage: (outcome == "cancelled").then(|| stage.as_str().into()),
            })),
            self.followed,
        );
        if outcome == "cancelled" {
            tracing::info!(
                id = self.id,
                stage = stage.as_str(),
                "client went away; upstream request dropped"
            );
        }
    }

    /// The router's steps as they happen: the stage, and each attempt on the feed.
    pub fn watch(&self, budget: u32) -> impl Fn(Step<'_>) + Send + Sync + '_ {
        move |step| {
            let feed = &self.shared.feed;
            match step {
                Step::Trying { route, target, n } => {
                    self.stage.set(Stage::Headers);
                    self.mark(&self.last_try_us);
                    self.headers_us.store(0, Ordering::Relaxed);
                    feed.step(
                        Event::Trying {
                            id: self.id,
                            route: route.to_string(),
                            target: target.to_string(),
                            attempt: n,
                            budget,
                        },
                        self.followed,
                    );
                }
                Step::Headers => {
                    self.stage.set(Stage::FirstToken);
                    self.mark(&self.headers_us);
                    feed.step(
                        Event::Stage {
                            id: self.id,
                            stage: Stage::FirstToken.as_str().into(),
                        },
                        self.followed,
                    );
                }
                Step::Failed(a) => feed.step(
                    Event::Attempt {
                        id: self.id,
                        route: a.route.clone(),
                        target: a.target.clone(),
                        class: a.class.to_string(),
                        status: a.status,
                        message: crate::format::clip(&a.message, 200),
                    },
                    self.followed,
                ),
            }
        }
    }

    /// The route answered (its first token is in): that, and any fallback, become events.
    pub fn committed(&mut self, served: &ServedBy, attempts: &[Attempt], budget: u32) {
        self.stage.set(Stage::Streaming);
        self.shared.feed.step(
            Event::FirstToken {
                id: self.id,
                ttft_ms: self.arrived.elapsed().as_secs_f64() * 1000.0,
            },
            self.followed,
        );
        if served.route != self.route {
            let reason = attempts
                .iter()
                .find(|a| a.route == self.route)
                .or(attempts.first())
                .map_or("circuit_open".to_string(), |a| a.class.to_string());
            let tried = attempts
                .iter()
                .filter(|a| a.class != ErrorClass::CircuitOpen)
                .count();
            self.shared
                .metrics
                .fallback(&self.route, &served.route, &reason);
            self.shared.feed.step(
                Event::Fallback {
                    id: self.id,
                    from: self.route.clone(),
                    to: served.route.clone(),
                    reason: reason.clone(),
                    attempt: tried as u32 + 1,
                    budget,
                },
                self.followed,
            );
            let line = format!(
                "request {}: route {} failed ({reason}); served by {}, attempt {}/{budget}",
                self.id,
                self.route,
                served.route,
                tried + 1
            );
            tracing::warn!("{line}");
            eprintln!("[gateway] {line}");
        }
        self.chain = chain(attempts, &format!("{} ok", served.route));
        self.served = Some(served.clone());
    }

    pub fn failed(&mut self, f: &RouteFailure) {
        self.chain = chain(&f.attempts, "failed");
        let line = format!(
            "request {} on route {} failed: {} [{}]",
            self.id, self.route, f.error, self.chain
        );
        tracing::warn!("{line}");
        eprintln!("[gateway] {line}");
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.done {
            self.finish("cancelled", Some("cancelled"), 499);
        }
    }
}
