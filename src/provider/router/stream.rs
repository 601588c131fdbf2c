//! One streaming attempt up to its commit point (the first content), and the committed
//! stream the caller reads afterwards, with idle and total limits.
use super::{Step, Timeouts, Watch};
use crate::provider::error::{ErrorClass, ProviderError};
use crate::provider::pool::{InFlightGuard, Target};
use crate::provider::{ChatRequest, EventStream, StreamEvent};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::Arc;
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
}

/// The stream the caller reads after commit: idle and total limits, and errors that say
/// content was already delivered, so nobody retries them.
fn committed(
    buffered: VecDeque<StreamEvent>,
    inner: Option<EventStream>,
    busy: InFlightGuard,
    target: Arc<Target>,
    t: Timeouts,
    deadline: Instant,
) -> EventStream {
    let st = Committed {
        buffered,
        inner,
        busy: Some(busy),
        target,
        t,
        deadline,
        delivered: 0,
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        if let Some(ev) = st.buffered.pop_front() {
            st.delivered += 1;
            return Some((Ok(ev), st));
        }
        let inner = st.inner.as_mut()?;
        // An event already there (a burst) needs no timer: one is set only to wait.
        let ready = {
            use futures::FutureExt;
            inner.next().now_or_never()
        };
        let next = match ready {
            Some(_) if Instant::now() >= st.deadline => Err(ErrorClass::TotalTimeout),
            Some(ev) => Ok(ev),
            None => {
                let (at, class) = limit(
                    Instant::now(),
                    st.t.idle,
                    ErrorClass::IdleTimeout,
                    st.deadline,
                );
                timeout_at(at.into(), inner.next()).await.map_err(|_| class)
            }
        };
        let failure = match next {
            Ok(Some(Ok(ev))) => {
                st.delivered += 1;
                return Some((Ok(ev), st));
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => e,
            Err(class) => {
                let what = if class == ErrorClass::IdleTimeout {
                    "next chunk"
                } else {
                    "end of the answer"
                };
                let after = if class == ErrorClass::IdleTimeout {
                    st.t.idle
                } else {
                    st.t.total
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
        Some((Err(e), st))
    }))
}
