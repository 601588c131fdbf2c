//! One gateway's traffic as the feed tells it: the requests (newest first, bounded), each
//! with its stage and attempt chain; the per-second figures; the totals since the reader
//! joined; and the events an operator should see as lines. Pure: `apply` takes one event.
pub use super::row::Row;
use super::wire::{Arrival, Ended as End, Event as FeedEvent, SecondStats as Second};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Requests kept in the list.
pub const ROWS: usize = 500;
/// Seconds of aggregates kept (sparklines, rates per minute).
pub const SECONDS: usize = 300;
/// Event lines kept.
pub const LINES: usize = 200;

/// Totals since the reader joined, from the per-second aggregates (nothing is counted twice
/// however many events arrive, or are lost to a lagging reader).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub started: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub cancelled: u64,
    pub fallbacks: u64,
    pub refused: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayView {
    pub addr: String,
    pub up: bool,
    /// Why it is down (the reader's last error).
    pub down_reason: Option<String>,
    #[serde(skip)]
    rows: HashMap<u64, Row>,
    /// Ids, newest first.
    #[serde(skip)]
    order: VecDeque<u64>,
    pub seconds: VecDeque<Second>,
    pub totals: Totals,
    pub lines: VecDeque<EventLine>,
    /// Lines ever added (a reader of `lines` knows which are new).
    pub lines_total: u64,
    /// Events this reader missed (it lagged behind the feed).
    pub missed: u64,
    /// The latest time the feed told (a start, a notice, a second's end), Unix ms: when an
    /// event line happened, to within the feed's second.
    pub clock_ms: u64,
}

/// An event as a line an operator reads, with when it happened (Unix ms; 0 when the feed
/// had told no time yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventLine {
    pub at_ms: u64,
    pub text: String,
}

/// One route of a gateway as the pane shows it: the last second's figures, requests a second
/// over the kept seconds, and its targets' circuits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RouteView {
    pub route: String,
    pub last: super::wire::RouteSecond,
    pub history: Vec<u64>,
    pub circuits: Vec<super::wire::CircuitSecond>,
}

impl GatewayView {
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_string(),
            ..Self::default()
        }
    }

    /// The requests, newest first.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.order.iter().filter_map(|id| self.rows.get(id))
    }

    pub fn row(&self, id: u64) -> Option<&Row> {
        self.rows.get(&id)
    }

    /// The last complete second.
    pub fn last_second(&self) -> Option<&Second> {
        self.seconds.back()
    }

    /// Fallbacks over the last 60 seconds.
    pub fn fallbacks_per_minute(&self) -> u64 {
        self.seconds
            .iter()
            .rev()
            .take(60)
            .map(|s| s.fallbacks)
            .sum()
    }

    /// The routes: those the gateway has (its circuits, in its config's order), then any
    /// other that served in the kept seconds.
    pub fn routes(&self) -> Vec<RouteView> {
        let mut names: Vec<&str> = Vec::new();
        if let Some(s) = self.seconds.back() {
            for c in &s.circuits {
                if !names.contains(&c.route.as_str()) {
                    names.push(&c.route);
                }
            }
        }
        for s in &self.seconds {
            for r in s.routes.keys() {
                if !names.contains(&r.as_str()) {
                    names.push(r);
                }
            }
        }
        let last = self.seconds.back();
        names
            .into_iter()
            .map(|n| RouteView {
                route: n.to_string(),
                last: last
                    .and_then(|s| s.routes.get(n).cloned())
                    .unwrap_or_default(),
                history: self
                    .seconds
                    .iter()
                    .map(|s| s.routes.get(n).map_or(0, |r| r.requests))
                    .collect(),
                circuits: last
                    .map(|s| {
                        s.circuits
                            .iter()
                            .filter(|c| c.route == n)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// A route's real traffic over the last 10 seconds: requests a second, the share that
    /// failed, and the highest per-second p99 TTFT; `None` when it carried nothing.
    pub fn route_traffic(&self, route: &str) -> Option<(f64, f64, Option<f64>)> {
        let secs: Vec<_> = self
            .seconds
            .iter()
            .rev()
            .take(10)
            .filter_map(|s| s.routes.get(route))
            .collect();
        let n: u64 = secs.iter().map(|r| r.requests).sum();
        if n == 0 {
            return None;
        }
        let errors: u64 = secs.iter().map(|r| r.errors).sum();
        let p99 = secs
            .iter()
            .filter_map(|r| r.ttft_p99_ms)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let span = self.seconds.len().clamp(1, 10) as f64;
        Some((n as f64 / span, errors as f64 / n as f64, p99))
    }

    /// Requests a server runs beyond what this gateway has in flight on its route: ones
    /// whose client left but whose generation goes on (a cancel that did not reach the
    /// server), or that reach the server some other way. `running` is the server's own
    /// count; the gateway's is taken at its highest over the last 3 seconds, since the two
    /// are read at different moments.
    pub fn orphans(&self, route: &str, running: f64) -> u64 {
        let ours = self
            .seconds
            .iter()
            .rev()
            .take(3)
            .map(|s| s.routes.get(route).map_or(0, |r| r.in_flight))
            .max()
            .unwrap_or(0);
        (running.round() as u64).saturating_sub(ours as u64)
    }

    /// Each client seen among the kept requests, with its count, most requests first.
    pub fn clients(&self) -> Vec<(String, usize)> {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for r in self.rows.values() {
            *m.entry(r.client.as_str()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn line(&mut self, s: String) {
        self.lines_total += 1;
        if self.lines.len() == LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(EventLine {
            at_ms: self.clock_ms,
            text: s,
        });
    }

    fn open(&mut self, row: Row) {
        let id = row.id;
        // Told twice (a reader that joined again): the row as it is stays.
        if self.rows.contains_key(&id) {
            return;
        }
        self.rows.insert(id, row);
        self.order.push_front(id);
        while self.order.len() > ROWS {
            if let Some(old) = self.order.pop_back() {
                self.rows.remove(&old);
            }
        }
    }

    /// The reader connected (or came back).
    pub fn connected(&mut self) {
        if !self.up {
            self.line(format!("gateway {} is up", self.addr));
        }
        self.up = true;
        self.down_reason = None;
    }

    /// The reader lost the gateway; the last figures stay.
    pub fn disconnected(&mut self, why: &str) {
        if self.up {
            self.line(format!("gateway {} is down: {why}", self.addr));
        }
        self.up = false;
        self.down_reason = Some(why.to_string());
    }

    pub fn apply(&mut self, ev: FeedEvent) {
        let told = match &ev {
            FeedEvent::Start(Arrival { at_ms, .. }) | FeedEvent::Notice { at_ms, .. } => *at_ms,
            FeedEvent::Second(s) => (s.t + 1) * 1000,
            _ => 0,
        };
        self.clock_ms = self.clock_ms.max(told);
        match ev {
            FeedEvent::Start(a) => self.open(Row::arrived(a)),
            FeedEvent::Trying {
                id, attempt, budget, ..
            } => {
                if let Some(r) = self.rows.get_mut(&id) {
                    r.attempt = Some((attempt, budget));
                    r.stage = "waiting_headers".into();
                }
            }
            FeedEvent::Stage { id, stage } => {
                if let Some(r) = self.rows.get_mut(&id) {
                    r.stage = stage.into_owned();
                }
            }
            FeedEvent::Attempt {
                id,
                route,
                class,
                status,
                message,
                ..
            } => {
                if let Some(r) = self.rows.get_mut(&id) {
                    let what = match status {
                        Some(s) => format!("{class} {s}"),
                        None => class,
                    };
                    r.chain.push_str(&format!("{route} x {what} -> "));
                    r.failures.push(format!("{route}: {what}: {message}"));
                }
            }
            FeedEvent::Fallback {
                id,
                from,
                to,
                reason,
                attempt,
                budget,
            } => self.line(format!(
                "request {id}: route {from} failed ({reason}); served by {to}, attempt {attempt}/{budget}"
            )),
            FeedEvent::FirstToken { id, ttft_ms } => {
                if let Some(r) = self.rows.get_mut(&id) {
                    r.stage = "streaming".into();
                    r.ttft_ms = Some(ttft_ms);
                }
            }
            FeedEvent::End(e) => self.end(*e),
            FeedEvent::Notice { message, .. } => self.line(message),
            FeedEvent::Second(s) => self.second(*s),
            FeedEvent::Lagged { missed } => self.missed += missed,
            FeedEvent::Unknown => {}
        }
    }

    fn end(&mut self, e: End) {
        if let Some(r) = self.rows.get_mut(&e.id) {
            r.ended(&e);
        }
        // Told whether or not the request is in the list (a sampled list has few of them).
        let line = match (e.outcome.as_ref(), &e.class) {
            ("cancelled", _) => Some(format!(
                "request {}: the client left while {}",
                e.id,
                e.stage.as_deref().unwrap_or("in flight")
            )),
            ("error", Some(c)) if e.status == 200 => Some(format!(
                "request {}: stream broken after its first token ({c}) on route {}",
                e.id, e.route
            )),
            ("error", Some(c)) if e.status == 429 && c.starts_with("queue") => Some(format!(
                "request {}: refused, the gateway's queue is full ({c})",
                e.id
            )),
            _ => None,
        };
        if let Some(l) = line {
            self.line(l);
        }
    }

    fn second(&mut self, s: Second) {
        // A second is counted once, however often it is told.
        if self.seconds.back().is_some_and(|last| s.t <= last.t) {
            return;
        }
        let t = &mut self.totals;
        t.started += s.started;
        t.ok += s.ok;
        for (k, n) in &s.errors {
            *t.errors.entry(k.clone()).or_default() += n;
        }
        t.cancelled += s.cancelled;
        t.fallbacks += s.fallbacks;
        t.refused += s.refused;
        t.completion_tokens += s.completion_tokens;
        if self.seconds.len() == SECONDS {
            self.seconds.pop_front();
        }
        self.seconds.push_back(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::wire::parse_line;

    fn arrival(id: u64, at_ms: u64) -> Arrival {
        Arrival {
            id,
            at_ms,
            client: "c".into(),
            dialect: "openai".into(),
            model: "m".into(),
            route: "r".into(),
            stream: true,
        }
    }

    fn feed(v: &mut GatewayView, lines: &[&str]) {
        for l in lines {
            v.apply(parse_line(l.as_bytes()).unwrap());
        }
    }

    #[test]
    fn a_fallback_builds_its_row_stage_by_stage() {
        let mut v = GatewayView::new("127.0.0.1:8090");
        feed(
            &mut v,
            &[
                r#"{"type":"start","id":7,"at_ms":1,"client":"app","dialect":"openai","model":"gpt-4o-mini","route":"tiny","stream":true}"#,
                r#"{"type":"trying","id":7,"route":"tiny","target":"t","attempt":1,"budget":3}"#,
            ],
        );
        assert_eq!(v.row(7).unwrap().stage, "waiting_headers");
        feed(
            &mut v,
            &[
                r#"{"type":"attempt","id":7,"route":"tiny","target":"t","class":"connect","status":null,"message":"refused"}"#,
                r#"{"type":"trying","id":7,"route":"ollama","target":"o","attempt":2,"budget":3}"#,
                r#"{"type":"stage","id":7,"stage":"waiting_first_token"}"#,
            ],
        );
        let r = v.row(7).unwrap();
        assert_eq!(
            (r.stage.as_str(), r.attempt),
            ("waiting_first_token", Some((2, 3)))
        );
        assert_eq!(r.chain, "tiny x connect -> ");
        feed(
            &mut v,
            &[
                r#"{"type":"first_token","id":7,"ttft_ms":12.5}"#,
                r#"{"type":"fallback","id":7,"from":"tiny","to":"ollama","reason":"connect","attempt":2,"budget":3}"#,
                r#"{"type":"end","id":7,"outcome":"ok","class":null,"status":200,"route":"ollama","server":"http://o","chain":"tiny x connect -> ollama ok","prompt_tokens":3,"completion_tokens":6,"ttft_ms":12.5,"duration_ms":40.0,"queue_ms":0.1,"upstream_ms":39.0,"overhead_us":50.0,"stage":null}"#,
            ],
        );
        let r = v.row(7).unwrap();
        assert_eq!(r.stage, "done");
        assert_eq!(r.chain, "tiny x connect -> ollama ok");
        assert_eq!(r.served_by.as_deref(), Some("ollama"));
        assert_eq!(r.completion_tokens, 6);
        assert_eq!(
            v.lines.back().unwrap().text,
            "request 7: route tiny failed (connect); served by ollama, attempt 2/3"
        );
    }

    #[test]
    fn a_stream_broken_after_its_first_token_ends_its_chain_in_the_break() {
        let mut v = GatewayView::new("g");
        feed(
            &mut v,
            &[
                r#"{"type":"start","id":1,"at_ms":1000,"client":"c","dialect":"openai","model":"m","route":"r","stream":true}"#,
                r#"{"type":"first_token","id":1,"ttft_ms":16.0}"#,
                r#"{"type":"end","id":1,"outcome":"error","class":"total_timeout","status":200,"route":"r","server":null,"chain":"r ok","ttft_ms":16.0,"duration_ms":30001.0,"stage":null}"#,
            ],
        );
        let r = v.row(1).unwrap();
        assert_eq!(
            (r.stage.as_str(), r.chain.as_str()),
            ("error", "r ok -> broken: total_timeout")
        );
        assert!(v
            .lines
            .back()
            .unwrap()
            .text
            .contains("stream broken after its first token (total_timeout)"));
    }

    #[test]
    fn the_list_is_bounded_newest_first_and_totals_come_from_seconds() {
        let mut v = GatewayView::new("g");
        for id in 1..=(ROWS as u64 + 10) {
            v.apply(FeedEvent::Start(arrival(id, id)));
        }
        assert_eq!(v.rows().count(), ROWS);
        assert_eq!(v.rows().next().unwrap().id, ROWS as u64 + 10);
        assert!(v.row(1).is_none());
        feed(
            &mut v,
            &[
                r#"{"type":"second","t":1,"started":5,"ok":4,"errors":{"connect":1},"fallbacks":2}"#,
                r#"{"type":"second","t":2,"started":3,"ok":3,"fallbacks":1}"#,
            ],
        );
        assert_eq!(
            (v.totals.started, v.totals.ok, v.totals.errors["connect"]),
            (8, 7, 1)
        );
        assert_eq!(v.fallbacks_per_minute(), 3);
        // Told again (a reader that joined again): counted once; a row keeps its progress.
        feed(
            &mut v,
            &[r#"{"type":"second","t":2,"started":3,"ok":3,"fallbacks":1}"#],
        );
        assert_eq!((v.totals.started, v.totals.ok), (8, 7));
        let newest = ROWS as u64 + 10;
        feed(
            &mut v,
            &[&format!(
                r#"{{"type":"first_token","id":{newest},"ttft_ms":3.0}}"#
            )],
        );
        v.apply(FeedEvent::Start(arrival(newest, 1)));
        assert_eq!(v.row(newest).unwrap().stage, "streaming");
        assert_eq!(v.rows().count(), ROWS);
        v.disconnected("connection refused");
        assert!(!v.up && v.seconds.len() == 2, "the last figures stay");
        v.connected();
        assert!(v.up);
    }
}
