//! One streaming attempt up to its commit point (the first content), and the committed
//! stream the caller reads afterwards, with idle and total limits.
use super::{Step, Timeouts, Watch};
use crate::provider::error::{ErrorClass, ProviderError};
use crate::provider::pool::{InFlightGuard, Target};
use crate::provider::{ChatRequest, EventStream, StreamEvent};
use futures::StreamExt;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

/// The earlier of a stage's own limit and the request deadline, with the class to report.
pub(super) fn limit(
    now: Instant,
    stage: Duration,
    class: ErrorClass,
    deadline: Instant,
) -> (Instant, ErrorClass) {
    let own = now + stage;
    if own < deadline {
        (own, class)
    } else {
        (deadline, ErrorClass::TotalTimeout)
    }
}

/// The request's deadline may come before a stage's own limit: then the deadline is named
/// (its length is the route's `timeout`, not the stage's).
pub(super) fn timed_out(class: ErrorClass, what: &str, after: Duration) -> ProviderError {
    let message = if class == ErrorClass::TotalTimeout {
        format!("no {what} before the request's deadline (its total timeout)")
    } else {
        format!("no {what} within {} ms", after.as_millis())
    };
    ProviderError::new(class, message)
}

/// One streaming attempt: headers, then buffered events until the first content (the commit
/// point), all before the router lets go. Returns the committed stream.
pub(super) async fn open_stream(
    target: Arc<Target>,
    req: &ChatRequest,
    t: Timeouts,
    deadline: Instant,
    watch: Watch<'_>,
) -> Result<EventStream, ProviderError> {
    let busy = target.track();
    let (at, class) = limit(
        Instant::now(),
        t.headers,
        ErrorClass::HeadersTimeout,
        deadline,
    );
    let mut inner = match timeout_at(at.into(), target.provider.chat_stream(req)).await {
        Ok(r) => r?,
        Err(_) => return Err(timed_out(class, "response headers", t.headers)),
    };
    watch(Step::Headers);
    let mut buffered = VecDeque::new();
    let (at, class) = limit(
        Instant::now(),
        t.first_token,
        ErrorClass::FirstTokenTimeout,
        deadline,
    );
    let mut ended = false;
    loop {
        match timeout_at(at.into(), inner.next()).await {
            Err(_) => return Err(timed_out(class, "first token", t.first_token)),
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(ev))) => {
                let commit = matches!(&ev, StreamEvent::Delta { text, .. } if !text.is_empty());
                buffered.push_back(ev);
                if commit {
                    break;
                }
            }
        }
    }
    target.circuit.on_success();
    Ok(committed(
        buffered,
        (!ended).then_some(inner),
        busy,
        target,
        t,
        deadline,
    ))
}

struct Committed {
    buffered: VecDeque<StreamEvent>,
    inner: Option<EventStream>,
    busy: Option<InFlightGuard>,
    target: Arc<Target>,
    t: Timeouts,
    deadline: Instant,
    delivered: usize,
    /// The idle limit, armed while waiting for the next event (an event already there, in
    /// a burst, needs no timer); kept between waits so that each wait only moves it.
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    /// What the armed timer means (the idle limit, or the deadline when it comes first).
    idle_class: ErrorClass,
    waiting: bool,
}

/// The stream the caller reads after commit: idle and total limits, and errors that say
/// content was already delivered, so nobody retries them. Polled in place: nothing of its
/// state moves per event.
fn committed(
    buffered: VecDeque<StreamEvent>,
    inner: Option<EventStream>,
    busy: InFlightGuard,
    target: Arc<Target>,
    t: Timeouts,
    deadline: Instant,
) -> EventStream {
    Box::pin(Committed {
        buffered,
        inner,
        busy: Some(busy),
        target,
        t,
        deadline,
        delivered: 0,
        idle: None,
        idle_class: ErrorClass::IdleTimeout,
        waiting: false,
    })
}

impl futures::Stream for Committed {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let st = self.get_mut();
        if let Some(ev) = st.buffered.pop_front() {
            st.delivered += 1;
            return Poll::Ready(Some(Ok(ev)));
        }
        let Some(inner) = st.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let failure = match inner.poll_next_unpin(cx) {
            Poll::Ready(got) => {
                let waited = std::mem::take(&mut st.waiting);
                match got {
                    // Past the deadline with events still coming: the total limit holds
                    // for a stream that never goes idle too.
                    Some(_) if !waited && Instant::now() >= st.deadline => {
                        timed_out(ErrorClass::TotalTimeout, "end of the answer", st.t.total)
                    }
                    Some(Ok(ev)) => {
                        st.delivered += 1;
                        return Poll::Ready(Some(Ok(ev)));
                    }
                    None => return Poll::Ready(None),
                    Some(Err(e)) => e,
                }
            }
            Poll::Pending => {
                if !st.waiting {
                    st.waiting = true;
                    let (at, class) = limit(
                        Instant::now(),
                        st.t.idle,
                        ErrorClass::IdleTimeout,
                        st.deadline,
                    );
                    st.idle_class = class;
                    match st.idle.as_mut() {
                        Some(sleep) => sleep.as_mut().reset(at.into()),
                        None => st.idle = Some(Box::pin(tokio::time::sleep_until(at.into()))),
                    }
                }
                let Some(sleep) = st.idle.as_mut() else {
                    return Poll::Pending;
                };
                ready!(sleep.as_mut().poll(cx));
                st.waiting = false;
                let class = st.idle_class;
                let (what, after) = if class == ErrorClass::IdleTimeout {
                    ("next chunk", st.t.idle)
                } else {
                    ("end of the answer", st.t.total)
                };
                timed_out(class, what, after)
            }
        };
        st.inner = None;
        st.busy = None;
        st.target.circuit.on_failure(&failure, Instant::now());
        let mut e = failure;
        e.message = format!(
            "{} `{}` ({}) failed after {} chunks had been delivered; not retried: {}",
            "route",
            st.target.route,
            st.target.provider.base_url(),
            st.delivered,
            e.message
        );
        Poll::Ready(Some(Err(e)))
    }
}
