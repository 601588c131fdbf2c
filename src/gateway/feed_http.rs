//! `GET /anorag/events`: the live feed as NDJSON for a console or `anorag-tui traffic`: the
//! recent events, then each as it happens, filtered per reader (seconds only, or a sampled
//! few requests a second) and written at most every 20 ms.
use super::auth::Caller;
use super::feed::{Event, Feed, ReaderGuard};
use super::{Shared, St};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

#[derive(serde::Deserialize, Default, Clone, Copy)]
pub(super) struct FeedQuery {
    /// Only the per-second aggregates (and notices): what a console needs at high rates.
    #[serde(default)]
    seconds_only: bool,
    /// Leave out the recent events a new reader gets first.
    #[serde(default)]
    live_only: bool,
    /// Only the recent events, then the end (a one-shot reader).
    #[serde(default)]
    snapshot: bool,
    /// Follow at most this many new requests a second, step by step; of the others only
    /// fallbacks and failures (a console's list stays live and cheap at any rate).
    #[serde(default)]
    rows_per_s: Option<u32>,
    /// The last second's aggregate this reader has: the kept ones after it come first (a
    /// reader that comes back after a silence loses no second's counts).
    #[serde(default)]
    since: Option<u64>,
}

/// Which events one reader gets.
struct FeedFilter {
    q: FeedQuery,
    followed: std::collections::HashSet<u64>,
    second: u64,
    taken: u32,
}

impl FeedFilter {
    fn new(q: FeedQuery) -> Self {
        Self {
            q,
            followed: Default::default(),
            second: 0,
            taken: 0,
        }
    }

    fn keep(&mut self, e: &Event) -> bool {
        if matches!(
            e,
            Event::Second(_) | Event::Notice { .. } | Event::Lagged { .. }
        ) {
            return true;
        }
        if self.q.seconds_only {
            return false;
        }
        let Some(n) = self.q.rows_per_s else {
            return true;
        };
        match e {
            Event::Start(a) => {
                let sec = a.at_ms / 1000;
                if sec != self.second {
                    (self.second, self.taken) = (sec, 0);
                }
                // A reader whose requests never end (it lagged past their ends) starts over.
                if self.followed.len() >= 65_536 {
                    self.followed.clear();
                }
                let take = self.taken < n;
                if take {
                    self.taken += 1;
                    self.followed.insert(a.id);
                }
                take
            }
            Event::Trying { id, .. }
            | Event::Stage { id, .. }
            | Event::Attempt { id, .. }
            | Event::FirstToken { id, .. } => self.followed.contains(id),
            Event::Fallback { .. } => true,
            Event::End(e) => self.followed.remove(&e.id) || e.outcome != "ok",
            _ => true,
        }
    }
}

/// A reader is written to at most once in this time, with everything since its last write:
/// a busy gateway's feed costs it a few writes a second per reader, not one per event.
const FEED_BATCH: std::time::Duration = std::time::Duration::from_millis(20);

fn write_line(out: &mut Vec<u8>, e: &Event) {
    if serde_json::to_writer(&mut *out, e).is_ok() {
        out.push(b'\n');
    }
}

/// Writes the kept seconds' aggregates after `after`; says the newest written (else `after`).
fn write_seconds_after(feed: &Feed, after: Option<u64>, out: &mut Vec<u8>) -> Option<u64> {
    let mut newest = after;
    for s in feed.seconds_after(after) {
        newest = Some(s.t);
        write_line(out, &Event::Second(Box::new(s)));
    }
    newest
}

/// One reader's live part of the feed.
struct Tail {
    rx: broadcast::Receiver<Arc<Event>>,
    draining: watch::Receiver<bool>,
    filter: FeedFilter,
    /// When the last write went (the next waits [`FEED_BATCH`] after it).
    wrote: Option<tokio::time::Instant>,
    /// The newest second written to this reader: after a lag, the kept ones after it follow.
    last_second: Option<u64>,
    sh: Arc<Shared>,
    _reader: ReaderGuard,
}

impl Tail {
    /// The next write: every event waiting, in one piece; `None` when the feed ends.
    async fn next_write(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if let Some(t) = self.wrote {
            tokio::time::sleep_until(t + FEED_BATCH).await;
        }
        loop {
            let first = tokio::select! {
                biased;
                got = self.rx.recv() => got,
                _ = super::until_true(&mut self.draining) => return None,
            };
            let mut out = Vec::new();
            let mut got = Some(first.map_err(|e| match e {
                RecvError::Lagged(n) => TryRecvError::Lagged(n),
                RecvError::Closed => TryRecvError::Closed,
            }));
            let mut closed = false;
            // What else is there goes in the same write.
            while let Some(g) = got.take() {
                match g {
                    Ok(e) if self.filter.keep(&e) => {
                        if let Event::Second(s) = &*e {
                            self.last_second = Some(s.t);
                        }
                        write_line(&mut out, &e)
                    }
                    Ok(_) => {}
                    // Missed events stay missed, but missed seconds are kept: they follow, so
                    // that the reader's totals stay whole.
                    Err(TryRecvError::Lagged(n)) => {
                        write_line(&mut out, &Event::Lagged { missed: n });
                        self.last_second =
                            write_seconds_after(&self.sh.feed, self.last_second, &mut out);
                    }
                    Err(TryRecvError::Closed) => closed = true,
                    Err(TryRecvError::Empty) => break,
                }
                if !closed {
                    got = Some(self.rx.try_recv());
                }
            }
            if !out.is_empty() {
                self.wrote = Some(tokio::time::Instant::now());
                return Some((Ok(Bytes::from(out)), self));
            }
            if closed {
                return None;
            }
        }
    }
}

/// The live feed as NDJSON: the recent events, then each as it happens.
pub(super) async fn events(State(sh): St, _: Caller, Query(q): Query<FeedQuery>) -> Response {
    let mut filter = FeedFilter::new(q);
    let wants = if q.seconds_only {
        Some(0)
    } else {
        q.rows_per_s
    };
    let (recent, rx, reader) = sh.feed.subscribe(wants);
    let mut head = Vec::new();
    // Subscribed first: a second closed meanwhile comes twice, and a reader counts it once.
    // Without `since`, the reader joins now: seconds before it are not its own.
    let last_second = match q.since {
        Some(t) => write_seconds_after(&sh.feed, Some(t), &mut head),
        None => sh.feed.last_second(),
    };
    if !q.live_only {
        for e in recent.iter().filter(|e| filter.keep(e)) {
            write_line(&mut head, e);
        }
    }
    let head = futures::stream::iter(
        (!head.is_empty()).then(|| Ok::<Bytes, std::io::Error>(Bytes::from(head))),
    );
    // The feed ends when the gateway drains, after what was published before (the drain's
    // notice among it): a watching console must not hold a graceful stop up.
    let tail = Tail {
        rx,
        draining: sh.drain_begun(),
        filter,
        wrote: None,
        last_second,
        sh,
        _reader: reader,
    };
    let tail = futures::stream::unfold(tail, Tail::next_write);
    use futures::StreamExt;
    let body = if q.snapshot {
        Body::from_stream(head)
    } else {
        Body::from_stream(head.chain(tail))
    };
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
