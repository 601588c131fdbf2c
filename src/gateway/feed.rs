//! The live feed the console reads: one event per step of each request (start, failed
//! attempt, fallback, first token, end with its class, cancel) and one aggregate per second,
//! so that a console watching thousands of requests a second can take the seconds alone.
//! Bounded everywhere: a broadcast channel that drops for a lagging reader (and says so), a
//! ring of recent events for a reader that joins late, and per-second histograms.
pub use super::events::{CircuitSecond, Event, RouteSecond, SecondStats};
pub use super::feed_readers::ReaderGuard;
use super::feed_readers::Readers;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for a reader that joins late.
const RECENT: usize = 512;
/// Seconds kept for `/anorag/stats`.
const SECONDS: usize = 300;

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
}

struct RouteWindow {
    stats: RouteSecond,
    ttft_us: Histogram<u64>,
}

struct Window {
    stats: SecondStats,
    ttft_us: Histogram<u64>,
    overhead_ns: Histogram<u64>,
    routes: BTreeMap<String, RouteWindow>,
}

impl Window {
    fn new() -> Self {
        Self {
            stats: SecondStats::default(),
            ttft_us: hist(),
            overhead_ns: hist(),
            routes: BTreeMap::new(),
        }
    }
    fn route(&mut self, r: &str) -> &mut RouteWindow {
        self.routes
            .entry(r.to_string())
            .or_insert_with(|| RouteWindow {
                stats: RouteSecond::default(),
                ttft_us: hist(),
            })
    }
}

fn q(h: &Histogram<u64>, q: f64, per_unit: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / per_unit)
}

/// The running attempts, by request and by route (per-route in flight).
#[derive(Default)]
struct Attempts {
    by_id: HashMap<u64, String>,
    by_route: HashMap<String, usize>,
}

impl Attempts {
    fn start(&mut self, id: u64, route: &str) {
        if let Some(old) = self.by_id.insert(id, route.to_string()) {
            self.done_on(&old);
        }
        *self.by_route.entry(route.to_string()).or_default() += 1;
    }
    fn end(&mut self, id: u64) {
        if let Some(r) = self.by_id.remove(&id) {
            self.done_on(&r);
        }
    }
    fn done_on(&mut self, route: &str) {
        if let Some(n) = self.by_route.get_mut(route) {
            *n = n.saturating_sub(1);
        }
    }
}

struct Counting {
    window: Window,
    attempts: Attempts,
    /// The circuits as the last second ended (a change is told as a notice).
    circuits: Vec<CircuitSecond>,
}

pub struct Feed {
    /// Shared, not copied: every reader and the ring hold the same event.
    tx: broadcast::Sender<Arc<Event>>,
    readers: Arc<Readers>,
    recent: Mutex<VecDeque<Arc<Event>>>,
    counting: Mutex<Counting>,
    seconds: Mutex<VecDeque<SecondStats>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            tx,
            readers: Arc::default(),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            counting: Mutex::new(Counting {
                window: Window::new(),
                attempts: Attempts::default(),
                circuits: Vec::new(),
            }),
            seconds: Mutex::new(VecDeque::with_capacity(SECONDS)),
        }
    }

    fn counting(&self) -> std::sync::MutexGuard<'_, Counting> {
        self.counting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event for every reader (and counts it in the second's aggregate).
    pub fn publish(&self, ev: Event) {
        self.send(ev, true);
    }

    /// A request begins: its start is published, and whether live readers follow its steps
    /// is decided (every request while a reader wants them all; else up to the sampling
    /// readers' budget a second). The answer goes with each of its later events.
    pub fn begin(&self, ev: Event, at_ms: u64) -> bool {
        let followed = self.follows(at_ms);
        self.send(ev, followed);
        followed
    }

    /// A step of a request: to the readers when they follow it, and always when it is a
    /// fallback or a failure (a sampling console still tells every one of those).
    pub fn step(&self, ev: Event, followed: bool) {
        let always = match &ev {
            Event::Fallback { .. } => true,
            Event::End(e) => e.outcome != "ok",
            _ => false,
        };
        self.send(ev, followed || always);
    }

    fn follows(&self, at_ms: u64) -> bool {
        let r = &self.readers;
        if r.full.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let budget = r.budget.load(Ordering::Relaxed);
        if budget == 0 {
            return false;
        }
        let mut t = r.taken.lock().unwrap_or_else(|p| p.into_inner());
        let sec = at_ms / 1000;
        if t.0 != sec {
            *t = (sec, 0);
        }
        let take = t.1 < budget;
        if take {
            t.1 += 1;
        }
        take
    }

    fn send(&self, ev: Event, to_readers: bool) {
        self.count(&ev);
        let ev = Arc::new(ev);
        {
            let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        // No reader is fine: the event is in the ring.
        if to_readers {
            let _ = self.tx.send(ev);
        }
    }

    fn count(&self, ev: &Event) {
        let mut c = self.counting();
        let Counting {
            window: w,
            attempts,
            ..
        } = &mut *c;
        match ev {
            Event::Start { .. } => w.stats.started += 1,
            Event::Trying { id, route, .. } => attempts.start(*id, route),
            Event::Attempt { id, .. } => attempts.end(*id),
            Event::Fallback { from, to, .. } => {
                w.stats.fallbacks += 1;
                w.route(from).stats.fallbacks_out += 1;
                w.route(to).stats.fallbacks_in += 1;
            }
            Event::End(e) => {
                attempts.end(e.id);
                match e.outcome.as_ref() {
                    "ok" => w.stats.ok += 1,
                    "cancelled" => w.stats.cancelled += 1,
                    _ => {
                        let c = e.class.clone().unwrap_or_else(|| "error".into());
                        *w.stats.errors.entry(c).or_default() += 1;
                    }
                }
                w.stats.completion_tokens += e.completion_tokens;
                if let Some(t) = e.ttft_ms {
                    let us = (t * 1000.0).max(1.0) as u64;
                    let _ = w.ttft_us.record(us);
                }
                let _ = w
                    .overhead_ns
                    .record((e.overhead_us * 1000.0).max(1.0) as u64);
                let r = w.route(&e.route);
                r.stats.requests += 1;
                r.stats.completion_tokens += e.completion_tokens;
                if e.outcome == "error" {
                    r.stats.errors += 1;
                }
                if let Some(t) = e.ttft_ms {
                    let _ = r.ttft_us.record((t * 1000.0).max(1.0) as u64);
                }
            }
            _ => {}
        }
    }

    pub fn refused(&self) {
        self.counting().window.stats.refused += 1;
    }

    /// Closes the current second: publishes its aggregate (with the circuits as they are
    /// now, a change among them told first as a notice) and starts the next.
    pub fn tick(
        &self,
        t: u64,
        in_flight: usize,
        queued: usize,
        circuits: Vec<CircuitSecond>,
    ) -> SecondStats {
        let (w, per_route, before) = {
            let mut c = self.counting();
            let w = std::mem::replace(&mut c.window, Window::new());
            let per_route: Vec<(String, usize)> = c
                .attempts
                .by_route
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| (r.clone(), *n))
                .collect();
            c.attempts.by_route.retain(|_, n| *n > 0);
            let before = std::mem::replace(&mut c.circuits, circuits.clone());
            (w, per_route, before)
        };
        for message in circuit_changes(&before, &circuits) {
            self.publish(Event::Notice {
                at_ms: t * 1000 + 999,
                message,
            });
        }
        let mut s = w.stats;
        s.circuits = circuits;
        s.t = t;
        s.in_flight = in_flight;
        s.queued = queued;
        s.ttft_p50_ms = q(&w.ttft_us, 0.5, 1000.0);
        s.ttft_p99_ms = q(&w.ttft_us, 0.99, 1000.0);
        s.overhead_p50_us = q(&w.overhead_ns, 0.5, 1000.0);
        s.overhead_p99_us = q(&w.overhead_ns, 0.99, 1000.0);
        for (name, r) in w.routes {
            let mut rs = r.stats;
            rs.ttft_p50_ms = q(&r.ttft_us, 0.5, 1000.0);
            rs.ttft_p99_ms = q(&r.ttft_us, 0.99, 1000.0);
            s.routes.insert(name, rs);
        }
        for (name, n) in per_route {
            s.routes.entry(name).or_default().in_flight = n;
        }
        {
            let mut secs = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
            if secs.len() == SECONDS {
                secs.pop_front();
            }
            secs.push_back(s.clone());
        }
        let _ = self.tx.send(Arc::new(Event::Second(Box::new(s.clone()))));
        s
    }

    /// A reader: the recent events first (oldest first), then live ones. `rows_per_s`:
    /// `None` follows every request, `Some(n)` up to n new ones a second (0: none, the
    /// seconds and notices alone).
    pub fn subscribe(
        &self,
        rows_per_s: Option<u32>,
    ) -> (
        Vec<Arc<Event>>,
        broadcast::Receiver<Arc<Event>>,
        ReaderGuard,
    ) {
        let r = &self.readers;
        let id = r.next.fetch_add(1, Ordering::Relaxed);
        match rows_per_s {
            None => {
                r.full.fetch_add(1, Ordering::Relaxed);
            }
            Some(n) => {
                let mut m = r.sampled.lock().unwrap_or_else(|p| p.into_inner());
                m.insert(id, n);
                r.rebudget(&m);
            }
        }
        let guard = ReaderGuard {
            readers: r.clone(),
            id,
            full: rows_per_s.is_none(),
        };
        let rx = self.tx.subscribe();
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        (recent, rx, guard)
    }

    /// The newest kept second's start, Unix s.
    pub fn last_second(&self) -> Option<u64> {
        let s = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        s.back().map(|s| s.t)
    }

    /// The last seconds' aggregates, oldest first.
    pub fn seconds(&self) -> Vec<SecondStats> {
        self.seconds_after(None)
    }

    /// The kept seconds' aggregates that start after `after` (all for `None`), oldest first.
    pub fn seconds_after(&self, after: Option<u64>) -> Vec<SecondStats> {
        let s = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        s.iter().filter(|s| Some(s.t) > after).cloned().collect()
    }
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("now".into(), |m| format!("in {:.1} s", m as f64 / 1000.0))
}

/// What changed among the circuits since the last second, as lines an operator reads. A
/// circuit that opened and closed again within the second shows by its trip count.
pub fn circuit_changes(before: &[CircuitSecond], now: &[CircuitSecond]) -> Vec<String> {
    let mut out = Vec::new();
    for c in now {
        let prev = before
            .iter()
            .find(|p| p.route == c.route && p.target == c.target);
        let (was, trips) = prev.map_or(("closed", 0), |p| (p.state.as_str(), p.trips));
        let who = format!("route {} target {}", c.route, c.target);
        let opened = c.trips > trips;
        if opened && c.state != "closed" {
            let why = c.last_error.as_deref().unwrap_or("failures");
            out.push(if c.last_class.as_deref() == Some("rate_limited") {
                format!(
                    "circuit open: {who} honours the upstream's Retry-After ({why}); tried again {}",
                    secs(c.reopens_in_ms)
                )
            } else {
                format!(
                    "circuit open: {who} after {} failure{} ({why}); tried again {}",
                    c.consecutive_failures,
                    if c.consecutive_failures == 1 { "" } else { "s" },
                    secs(c.reopens_in_ms)
                )
            });
        } else if opened {
            out.push(format!(
                "circuit opened and closed again within a second: {who}"
            ));
        } else if c.state != was {
            out.push(match c.state.as_str() {
                "closed" => format!("circuit closed: {who} answers again"),
                "half_open" => format!("circuit half-open: {who} is being probed"),
                s => format!("circuit {s}: {who}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(id: u64, route: &str, outcome: &'static str, ttft: Option<f64>) -> Event {
        Event::End(Box::new(super::super::events::Ended {
            id,
            outcome: outcome.into(),
            class: (outcome == "error").then(|| "server".into()),
            status: if outcome == "ok" { 200 } else { 502 },
            route: route.into(),
            server: None,
            chain: String::new(),
            prompt_tokens: 3,
            completion_tokens: 10,
            ttft_ms: ttft,
            duration_ms: 50.0,
            queue_ms: 0.0,
            upstream_ms: 49.0,
            overhead_us: 40.0,
            answer_ms: None,
            headers_ms: None,
            stage: None,
        }))
    }

    #[test]
    fn a_second_aggregates_what_ended_in_it_and_the_ring_is_bounded() {
        let f = Feed::new();
        for i in 0..600 {
            f.publish(end(i, "a", "ok", Some(10.0 + (i % 10) as f64)));
        }
        f.publish(end(600, "b", "error", None));
        f.publish(Event::Fallback {
            id: 601,
            from: "b".into(),
            to: "a".into(),
            reason: "connect".into(),
            attempt: 2,
            budget: 4,
        });
        let s = f.tick(1, 2, 0, vec![]);
        assert_eq!(s.ok, 600);
        assert_eq!(s.errors["server"], 1);
        assert_eq!(s.fallbacks, 1);
        assert_eq!(s.routes["a"].requests, 600);
        assert_eq!(s.routes["a"].fallbacks_in, 1);
        assert_eq!(s.routes["b"].errors, 1);
        let p50 = s.ttft_p50_ms.unwrap();
        assert!((14.0..=15.1).contains(&p50), "{p50}");
        let (recent, _, _) = f.subscribe(None);
        assert_eq!(recent.len(), RECENT);
        let next = f.tick(2, 0, 0, vec![]);
        assert_eq!(next.ok, 0, "a new second starts empty");
        assert_eq!(f.seconds().len(), 2);
    }
}
