//! One request through the router, whatever the client's dialect: admission, the router's
//! attempts and fallbacks up to the commit point, then the answer relayed event by event in
//! the client's dialect. A request is counted once however it ends; one whose client went
//! away (the handler or body dropped) is counted as cancelled in the stage it was in, and
//! dropping it drops the upstream connection.
use super::dialect::{self, Dialect, Encoder, Shape, Timings};
use super::feed::Event;
use super::metrics::Finished;
use super::Shared;
use crate::provider::router::{Attempt, RouteFailure, ServedBy};
use crate::provider::{ChatRequest, ErrorClass, EventStream, StreamEvent, Usage};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A parsed request, ready to route.
pub struct Ask {
    pub dialect: Dialect,
    pub shape: Shape,
    /// The model the client asked for (echoed in the answer).
    pub asked: String,
    pub route: String,
    pub req: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// The client's key name, or its address.
    pub client: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Queued,
    Upstream,
    Streaming,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Upstream => "waiting_upstream",
            Stage::Streaming => "streaming",
        }
    }
}

/// One request's account: its times, where it is, and who served it. Dropped before it
/// was finished means the client went away.
struct Tracker {
    shared: Arc<Shared>,
    id: u64,
    dialect: Dialect,
    asked: String,
    route: String,
    arrived: Instant,
    stage: Stage,
    queue: Duration,
    upstream: Duration,
    first: Option<Instant>,
    served: Option<ServedBy>,
    chain: String,
    usage: Usage,
    done: bool,
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
    fn begin(shared: &Arc<Shared>, ask: &Ask, arrived: Instant) -> Self {
        let id = shared.next_id();
        shared.feed.publish(Event::Start {
            id,
            at_ms: crate::time::unix_now_ms(),
            client: ask.client.clone(),
            dialect: ask.dialect.as_str(),
            model: ask.asked.clone(),
            route: ask.route.clone(),
            stream: ask.stream,
        });
        Self {
            shared: shared.clone(),
            id,
            dialect: ask.dialect,
            asked: ask.asked.clone(),
            route: ask.route.clone(),
            arrived,
            stage: Stage::Queued,
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
    async fn admit(&mut self) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
        let shared = self.shared.clone();
        match shared.admission.enter().await {
            Ok(p) => {
                self.queue = self.arrived.elapsed();
                shared.metrics.queue_wait(self.queue.as_secs_f64());
                self.stage = Stage::Upstream;
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

    fn ttft_ms(&self) -> Option<f64> {
        self.first
            .map(|f| f.saturating_duration_since(self.arrived).as_secs_f64() * 1000.0)
    }

    /// Counts the request once: metrics, the feed's end event, and a log line for failures.
    fn finish(&mut self, outcome: &'static str, class: Option<&str>, status: u16) {
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
        if outcome == "cancelled" {
            sh.metrics.cancelled(self.stage.as_str());
        }
        sh.metrics.finished(&Finished {
            route: &route,
            model: &self.asked,
            dialect: self.dialect.as_str(),
            status,
            ttft_s: self.ttft_ms().map(|t| t / 1000.0),
            upstream_s: (self.stage != Stage::Queued).then_some(self.upstream.as_secs_f64()),
            overhead_s: (outcome == "ok").then_some(overhead.as_secs_f64()),
            prompt_tokens: self.usage.prompt_tokens,
            completion_tokens: self.usage.completion_tokens,
        });
        sh.feed.publish(Event::End {
            id: self.id,
            outcome,
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
            stage: (outcome == "cancelled").then(|| self.stage.as_str()),
        });
        if outcome == "cancelled" {
            tracing::info!(
                id = self.id,
                stage = self.stage.as_str(),
                "client went away; upstream request dropped"
            );
        }
    }

    fn publish_attempts(&self, attempts: &[Attempt]) {
        for a in attempts {
            self.shared.feed.publish(Event::Attempt {
                id: self.id,
                route: a.route.clone(),
                target: a.target.clone(),
                class: a.class.to_string(),
                status: a.status,
                message: crate::format::clip(&a.message, 200),
            });
        }
    }

    /// The route answered: its failed attempts and any fallback become events.
    fn committed(&mut self, served: &ServedBy, attempts: &[Attempt], budget: u32) {
        self.publish_attempts(attempts);
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
            self.shared.feed.publish(Event::Fallback {
                id: self.id,
                from: self.route.clone(),
                to: served.route.clone(),
                reason: reason.clone(),
                attempt: tried + 1,
                budget,
            });
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

    fn failed(&mut self, f: &RouteFailure) {
        self.publish_attempts(&f.attempts);
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

/// The HTTP status a failure is answered with: the upstream's own where it had one (a 429
/// stays a 429, so the client's SDK backs off), else what the class means for a gateway. A
/// circuit held open by an upstream's `Retry-After` on a 429 is still a 429.
pub fn failure_status(shared: &Shared, f: &RouteFailure) -> u16 {
    use ErrorClass::*;
    if f.error.class == CircuitOpen {
        let live = shared.live();
        let limited = f
            .attempts
            .iter()
            .flat_map(|a| live.router.circuits(&a.route))
            .any(|(_, c)| c.reopens_in_ms.is_some() && c.last_class == Some(RateLimited));
        if limited {
            return 429;
        }
    }
    match (f.error.class, f.error.status) {
        // Our keys upstream were refused: not the client's key, so not a 401 for it.
        (Auth, _) => 502,
        (_, Some(s)) if (400..600).contains(&s) => s,
        (RateLimited, _) => 429,
        (Overloaded | CircuitOpen, _) => 503,
        (ConnectTimeout | HeadersTimeout | FirstTokenTimeout | IdleTimeout | TotalTimeout, _) => {
            504
        }
        (ContextLength | BadRequest, _) => 400,
        (NotFound, _) => 404,
        _ => 502,
    }
}

fn openai_type(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_error",
        400 | 404 | 413 => "invalid_request_error",
        401 => "authentication_error",
        _ => "server_error",
    }
}

/// A response with a JSON error body in the dialect's shape.
pub fn error_response(
    d: Dialect,
    status: u16,
    message: &str,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Response {
    let body = dialect::error_body(d, message, openai_type(status), None, code);
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(ra) = retry_after {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(dialect::retry_after_secs(ra)),
        );
    }
    r
}

/// When the client may try again: the upstream's `Retry-After`, or the earliest moment an
/// open circuit on the way may be probed.
fn retry_after(shared: &Shared, f: &RouteFailure) -> Option<Duration> {
    if let Some(d) = f.error.retry_after {
        return Some(d);
    }
    let live = shared.live();
    let routes: Vec<String> = f.attempts.iter().map(|a| a.route.clone()).collect();
    routes
        .iter()
        .flat_map(|r| live.router.circuits(r))
        .filter_map(|(_, c)| c.reopens_in_ms)
        .min()
        .map(Duration::from_millis)
        .filter(|_| matches!(failure_status(shared, f), 429 | 503))
}

fn served_headers(r: &mut Response, id: u64, served: &ServedBy, attempts: &[Attempt]) {
    let h = r.headers_mut();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("x-anorag-request-id", id.to_string());
    put("x-anorag-route", served.route.clone());
    put("x-anorag-server", served.base_url.clone());
    put("x-anorag-attempts", (attempts.len() + 1).to_string());
    if !attempts.is_empty() {
        let failed: Vec<String> = attempts
            .iter()
            .map(|a| match a.status {
                Some(s) => format!("{} {} {s}", a.route, a.class),
                None => format!("{} {}", a.route, a.class),
            })
            .collect();
        put(
            "x-anorag-failed",
            crate::format::clip(&failed.join(", "), 512),
        );
    }
}

/// Answers one request, streamed or whole.
pub async fn serve(shared: Arc<Shared>, ask: Ask, arrived: Instant) -> Response {
    let mut tr = Tracker::begin(&shared, &ask, arrived);
    let id = tr.id;
    let permit = match tr.admit().await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let live = shared.live();
    let budget = live.router.policy().max_attempts;
    let t0 = Instant::now();
    if !ask.stream {
        // Upstream streams even when the client does not: the headers, first-token and idle
        // timeouts then guard a whole answer too (a silent server falls back instead of
        // holding the client until the total timeout), and nothing reaches the client before
        // the answer is complete.
        let got = match live.router.chat_stream(Some(&ask.route), &ask.req).await {
            Ok(rs) => {
                tr.committed(&rs.served_by, &rs.attempts, budget);
                collect(&mut tr, rs.stream)
                    .await
                    .map(|r| (r, rs.served_by, rs.attempts))
                    .map_err(Whole::Broke)
            }
            Err(f) => Err(Whole::Failed(f)),
        };
        tr.upstream += t0.elapsed();
        return match got {
            Ok((response, served, attempts)) => {
                tr.usage = response.usage.unwrap_or_default();
                let first = tr.first.unwrap_or_else(Instant::now);
                let t = Timings {
                    total: arrived.elapsed(),
                    prompt_eval: first.saturating_duration_since(arrived),
                    eval: first.elapsed(),
                };
                let body = dialect::whole(ask.dialect, ask.shape, &ask.asked, &response, t);
                let mut resp = (StatusCode::OK, body).into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                served_headers(&mut resp, id, &served, &attempts);
                tr.finish("ok", None, 200);
                drop(permit);
                resp
            }
            Err(Whole::Failed(f)) => fail(&shared, &mut tr, &ask, &f),
            Err(Whole::Broke(e)) => {
                // Broken after the first token: nothing was sent, so the client gets an
                // HTTP error, never a cut answer.
                tr.finish("error", Some(e.class.as_str()), 502);
                let msg = format!("route `{}`: {}", ask.route, e.message);
                error_response(ask.dialect, 502, &msg, Some(e.class.as_str()), None)
            }
        };
    }
    match live.router.chat_stream(Some(&ask.route), &ask.req).await {
        Err(f) => {
            tr.upstream += t0.elapsed();
            fail(&shared, &mut tr, &ask, &f)
        }
        Ok(rs) => {
            tr.upstream += t0.elapsed();
            tr.committed(&rs.served_by, &rs.attempts, budget);
            tr.stage = Stage::Streaming;
            let enc = Encoder::new(ask.dialect, ask.shape, &ask.asked, ask.include_usage);
            let mut resp = Response::new(Body::empty());
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(enc.content_type()),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            served_headers(&mut resp, id, &rs.served_by, &rs.attempts);
            let relay = Relay {
                tr,
                events: rs.stream,
                enc,
                abort: shared.abort_streams(),
                ended: false,
                _permit: permit,
            };
            *resp.body_mut() =
                Body::from_stream(futures::stream::unfold(relay, |mut r| async move {
                    r.next().await.map(|b| (Ok::<Bytes, std::io::Error>(b), r))
                }));
            resp
        }
    }
}

/// Embeddings through the router, answered in the client's dialect.
pub async fn embed(
    shared: Arc<Shared>,
    d: Dialect,
    route: String,
    e: super::parse::EmbedAsk,
    client: String,
    arrived: Instant,
) -> Response {
    let ask = Ask {
        dialect: d,
        shape: Shape::Chat,
        asked: e.model.clone(),
        route,
        req: ChatRequest::default(),
        stream: false,
        include_usage: false,
        client,
    };
    let mut tr = Tracker::begin(&shared, &ask, arrived);
    let id = tr.id;
    let _permit = match tr.admit().await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let live = shared.live();
    let t0 = Instant::now();
    let got = live.router.embed(Some(&ask.route), &e.inputs).await;
    tr.upstream += t0.elapsed();
    match got {
        Err(f) => fail(&shared, &mut tr, &ask, &f),
        Ok((emb, served, attempts)) => {
            tr.committed(&served, &attempts, live.router.policy().max_attempts);
            tr.usage.prompt_tokens = emb.prompt_tokens;
            let body = match d {
                Dialect::OpenAi => {
                    let data: Vec<serde_json::Value> = emb
                        .vectors
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let embedding = if e.base64 {
                                use base64::Engine;
                                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                                serde_json::json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                            } else {
                                serde_json::json!(v)
                            };
                            serde_json::json!({"object": "embedding", "index": i, "embedding": embedding})
                        })
                        .collect();
                    serde_json::json!({"object": "list", "data": data, "model": e.model, "usage": {"prompt_tokens": emb.prompt_tokens, "total_tokens": emb.prompt_tokens}})
                }
                Dialect::Ollama => {
                    serde_json::json!({"model": e.model, "embeddings": emb.vectors, "total_duration": arrived.elapsed().as_nanos() as u64, "prompt_eval_count": emb.prompt_tokens})
                }
            };
            let mut resp = (StatusCode::OK, body.to_string()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            served_headers(&mut resp, id, &served, &attempts);
            tr.finish("ok", None, 200);
            resp
        }
    }
}

/// Why a whole answer could not be given.
enum Whole {
    /// Every attempt failed before the first token.
    Failed(RouteFailure),
    /// The answer broke after its first token.
    Broke(crate::provider::ProviderError),
}

/// A committed stream read to its end into one answer.
async fn collect(
    tr: &mut Tracker,
    mut events: EventStream,
) -> Result<crate::provider::ChatResponse, crate::provider::ProviderError> {
    let mut r = crate::provider::ChatResponse {
        text: String::new(),
        usage: None,
        finish_reason: None,
        model: None,
    };
    while let Some(ev) = events.next().await {
        match ev {
            Ok(StreamEvent::Delta {
                text,
                at,
                finish_reason,
            }) => {
                if tr.first.is_none() && !text.is_empty() {
                    tr.first = Some(at);
                }
                r.text.push_str(&text);
                if finish_reason.is_some() {
                    r.finish_reason = finish_reason;
                }
            }
            Ok(StreamEvent::Usage { usage, .. }) => r.usage = Some(usage),
            Err(e) => return Err(e),
        }
    }
    Ok(r)
}

fn fail(shared: &Shared, tr: &mut Tracker, ask: &Ask, f: &RouteFailure) -> Response {
    tr.failed(f);
    let status = failure_status(shared, f);
    tr.finish("error", Some(f.error.class.as_str()), status);
    let ra = retry_after(shared, f);
    let mut msg = format!("route `{}`: {}", f.route, f.error.message);
    if f.attempts.len() > 1 {
        msg.push_str(&format!(
            " (after {} attempts: {})",
            f.attempts.len(),
            tr.chain
        ));
    }
    error_response(ask.dialect, status, &msg, Some(f.error.class.as_str()), ra)
}

/// The committed answer, relayed: each event as it arrives (no buffering), the end in the
/// dialect's form, or an in-band error that the client's SDK raises.
struct Relay {
    tr: Tracker,
    events: EventStream,
    enc: Encoder,
    abort: tokio::sync::watch::Receiver<bool>,
    ended: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Relay {
    /// The next bytes for the client: the next event, and with it every event that is
    /// already there (nothing waits for company: an event alone is sent at once), so that a
    /// fast upstream costs one write per burst rather than one per chunk.
    async fn next(&mut self) -> Option<Bytes> {
        use futures::FutureExt;
        if self.ended {
            return None;
        }
        let mut out = Vec::with_capacity(512);
        loop {
            let waited = Instant::now();
            let ev = tokio::select! {
                biased;
                ev = self.events.next() => ev,
                _ = super::until_true(&mut self.abort) => {
                    self.tr.upstream += waited.elapsed();
                    self.enc.error("the gateway is shutting down: the answer was cut short after its drain timeout", "server_error", &mut out);
                    self.tr.finish("error", Some("shutdown"), 200);
                    self.ended = true;
                    return Some(out.into());
                }
            };
            self.tr.upstream += waited.elapsed();
            if self.take(ev, &mut out) {
                return Some(out.into());
            }
            while out.len() < 32 * 1024 {
                match self.events.next().now_or_never() {
                    Some(ev) => {
                        if self.take(ev, &mut out) {
                            return Some(out.into());
                        }
                    }
                    None => break,
                }
            }
            // An event that wrote nothing (an empty Ollama delta) waits for the next.
            if !out.is_empty() {
                return Some(out.into());
            }
        }
    }

    /// One upstream event into the client's bytes; true when the answer has ended.
    fn take(
        &mut self,
        ev: Option<Result<StreamEvent, crate::provider::ProviderError>>,
        out: &mut Vec<u8>,
    ) -> bool {
        match ev {
            Some(Ok(StreamEvent::Delta {
                text,
                at,
                finish_reason,
            })) => {
                if self.tr.first.is_none() && !text.is_empty() {
                    self.tr.first = Some(at);
                }
                self.enc.delta(&text, finish_reason.as_deref(), out);
                false
            }
            Some(Ok(StreamEvent::Usage { usage, .. })) => {
                self.tr.usage = usage;
                self.enc.usage(usage);
                false
            }
            Some(Err(e)) => {
                let msg = format!("the answer broke off: {}", e.message);
                self.enc.error(&msg, "server_error", out);
                self.tr.finish("error", Some(e.class.as_str()), 200);
                self.ended = true;
                true
            }
            None => {
                let first = self.tr.first.unwrap_or_else(Instant::now);
                let t = Timings {
                    total: self.tr.arrived.elapsed(),
                    prompt_eval: first.saturating_duration_since(self.tr.arrived),
                    eval: first.elapsed(),
                };
                self.enc.end(t, out);
                self.tr.finish("ok", None, 200);
                self.ended = true;
                true
            }
        }
    }
}
