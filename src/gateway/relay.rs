//! One request through the router, whatever the client's dialect: admission, the router's
//! attempts and fallbacks up to the commit point, then the answer relayed event by event in
//! the client's dialect. A request is counted once however it ends; one whose client went
//! away (the handler or body dropped) is counted as cancelled in the stage it was in, and
//! dropping it drops the upstream connection.
use super::dialect::{self, Dialect, Encoder, Shape, Timings};
use super::errors::{error_response, failure_status, retry_after};
use super::tracker::{Tracker, Who};
use super::Shared;
use crate::provider::router::{Attempt, RouteFailure, ServedBy};
use crate::provider::{ChatRequest, EventStream, StreamEvent};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

impl Ask {
    fn who(&self) -> Who<'_> {
        Who {
            dialect: self.dialect,
            asked: &self.asked,
            route: &self.route,
            client: &self.client,
            stream: self.stream,
        }
    }
}

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
    let mut tr = Tracker::begin(&shared, ask.who(), arrived);
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
        let got = live
            .router
            .chat_stream_watched(Some(&ask.route), &ask.req, &tr.watch(budget))
            .await;
        let got = match got {
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
    let got = live
        .router
        .chat_stream_watched(Some(&ask.route), &ask.req, &tr.watch(budget))
        .await;
    match got {
        Err(f) => {
            tr.upstream += t0.elapsed();
            fail(&shared, &mut tr, &ask, &f)
        }
        Ok(rs) => {
            tr.upstream += t0.elapsed();
            tr.committed(&rs.served_by, &rs.attempts, budget);
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
            let mut abort = shared.abort_streams();
            let mut relay = Relay {
                tr,
                events: rs.stream,
                enc,
                abort: Box::pin(async move { super::until_true(&mut abort).await }),
                ended: false,
                first_sent: false,
                flush_first: false,
                waiting_since: None,
                _permit: permit,
            };
            // Polled in place: nothing of the relay's state moves per write.
            *resp.body_mut() = Body::from_stream(futures::stream::poll_fn(move |cx| {
                relay
                    .poll_next(cx)
                    .map(|b| b.map(Ok::<Bytes, std::io::Error>))
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
    let mut tr = Tracker::begin(&shared, ask.who(), arrived);
    let id = tr.id;
    let _permit = match tr.admit().await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let live = shared.live();
    let budget = live.router.policy().max_attempts;
    let t0 = Instant::now();
    let got = live
        .router
        .embed_watched(Some(&ask.route), &e.inputs, &tr.watch(budget))
        .await;
    tr.upstream += t0.elapsed();
    match got {
        Err(f) => fail(&shared, &mut tr, &ask, &f),
        Ok((emb, served, attempts)) => {
            tr.committed(&served, &attempts, budget);
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
    let ra = retry_after(shared, f, status);
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
    /// Ready once the drain timeout has passed.
    abort: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ended: bool,
    /// Whether the first token has been written.
    first_sent: bool,
    /// The first token was just handed over: the next poll yields once, so that the server
    /// flushes it (with the response head) before the rest of its burst is read. Otherwise
    /// the server buffers every frame that is ready and the client's first token waits for
    /// the whole burst.
    flush_first: bool,
    /// Since when the relay has waited on upstream (counted into `tr.upstream`).
    waiting_since: Option<Instant>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Relay {
    /// The next bytes for the client: the next event, and with it every event that is
    /// already there (nothing waits for company: an event alone is sent at once), so that a
    /// fast upstream costs one write per burst rather than one per chunk. The first token
    /// goes out alone, ahead of the rest of its burst: the client's TTFT does not wait for
    /// the burst to be read.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if std::mem::take(&mut self.flush_first) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut out = Vec::new();
        loop {
            let ev = match self.events.poll_next_unpin(cx) {
                Poll::Ready(ev) => ev,
                Poll::Pending => {
                    let since = *self.waiting_since.get_or_insert_with(Instant::now);
                    if self.abort.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.tr.upstream += since.elapsed();
                    self.enc.error("the gateway is shutting down: the answer was cut short after its drain timeout", "server_error", &mut out);
                    self.tr.finish("error", Some("shutdown"), 200);
                    self.ended = true;
                    return Poll::Ready(Some(out.into()));
                }
            };
            if let Some(since) = self.waiting_since.take() {
                self.tr.upstream += since.elapsed();
            }
            out.reserve(512);
            if self.take(ev, &mut out) {
                return Poll::Ready(Some(out.into()));
            }
            while out.len() < 32 * 1024 && (self.first_sent || self.tr.first.is_none()) {
                match self.events.poll_next_unpin(cx) {
                    Poll::Ready(ev) => {
                        if self.take(ev, &mut out) {
                            return Poll::Ready(Some(out.into()));
                        }
                    }
                    Poll::Pending => break,
                }
            }
            // An event that wrote nothing (an empty Ollama delta) waits for the next.
            if !out.is_empty() {
                if !self.first_sent && self.tr.first.is_some() {
                    self.first_sent = true;
                    self.flush_first = true;
                }
                return Poll::Ready(Some(out.into()));
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
