//! The router: one owner of retries. Walks a route's targets and its fallback chain under one
//! attempt budget and one deadline, with separate connect / headers / first-token / idle /
//! total timeouts. A stream is committed at its first content; after that a failure ends it
//! with an in-band error and is never retried.
use super::circuit::{Admission, CircuitSnapshot};
use super::error::{Disposition, ErrorClass, ProviderError};
use super::pool::{self, InFlightGuard, Target};
use super::{ChatRequest, ChatResponse, EventStream, ProviderKind, StreamEvent};
use futures::future::BoxFuture;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// TCP connect (set on the HTTP client).
    pub connect: Duration,
    /// Request sent -> response headers.
    pub headers: Duration,
    /// Headers -> first content.
    pub first_token: Duration,
    /// Longest gap between two chunks.
    pub idle: Duration,
    /// The whole request, retries and fallbacks included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            headers: Duration::from_secs(30),
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

/// How deep fallbacks of fallbacks go (LiteLLM's `ROUTER_MAX_FALLBACKS`).
pub const MAX_FALLBACK_DEPTH: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct RouterPolicy {
    /// Attempts across all targets and fallbacks of one request (probes not counted).
    pub max_attempts: u32,
    pub timeouts: Timeouts,
    /// Longest wait for a cooling target (or a backoff) before giving up.
    pub max_wait: Duration,
    pub backoff_base: Duration,
}

impl Default for RouterPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            timeouts: Timeouts::default(),
            max_wait: Duration::from_secs(5),
            backoff_base: Duration::from_millis(500),
        }
    }
}

/// A named route: its targets (one, or several for an Ollama pool) and where to go next.
pub struct RouteEntry {
    pub name: String,
    pub kind: ProviderKind,
    pub targets: Vec<Arc<Target>>,
    pub fallback: Vec<String>,
    pub context_fallback: Vec<String>,
    /// Overrides the policy's total timeout (the config's `params.timeout`).
    pub total_timeout: Option<Duration>,
    /// Round-robin position among equally good targets.
    pub turn: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub route: String,
    pub target: String,
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServedBy {
    pub route: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
}

pub struct RoutedStream {
    pub stream: EventStream,
    pub served_by: ServedBy,
    pub attempts: Vec<Attempt>,
    /// When the request was made: the origin for TTFT and E2E.
    pub started: Instant,
}

#[derive(Debug, Clone)]
pub struct RoutedResponse {
    pub response: ChatResponse,
    pub served_by: ServedBy,
    pub attempts: Vec<Attempt>,
    pub started: Instant,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct RouteFailure {
    pub route: String,
    pub attempts: Vec<Attempt>,
    pub error: ProviderError,
}

impl std::fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "route `{}` failed: {}", self.route, self.error)?;
        for a in &self.attempts {
            write!(f, "\n  - {} {}: {}", a.route, a.target, a.class)?;
            if let Some(s) = a.status {
                write!(f, " (HTTP {s})")?;
            }
            write!(f, ": {}", a.message)?;
        }
        Ok(())
    }
}

/// Keeps something alive as long as the router (the built-in simulator's server).
pub type Keepalive = Box<dyn std::any::Any + Send + Sync>;

pub struct Router {
    routes: Vec<Arc<RouteEntry>>,
    default_route: String,
    policy: RouterPolicy,
    _keep: Vec<Keepalive>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.route_names())
            .field("default_route", &self.default_route)
            .finish()
    }
}

impl Attempt {
    fn new(route: &str, t: &Target, e: &ProviderError) -> Self {
        Self {
            route: route.to_string(),
            target: t.label(),
            class: e.class,
            status: e.status,
            message: e.message.clone(),
        }
    }
}

fn served_by(route: &RouteEntry, t: &Target) -> ServedBy {
    ServedBy {
        route: route.name.clone(),
        kind: t.provider.kind(),
        base_url: t.provider.base_url().to_string(),
        model: t.provider.model().to_string(),
    }
}

/// The earlier of a stage's own limit and the request deadline, with the class to report.
fn limit(
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

fn timed_out(class: ErrorClass, what: &str, after: Duration) -> ProviderError {
    ProviderError::new(class, format!("no {what} within {} ms", after.as_millis()))
}

type AttemptFn<'a, T> =
    dyn Fn(Arc<Target>, Instant) -> BoxFuture<'a, Result<T, ProviderError>> + Send + Sync + 'a;

impl Router {
    pub fn new(
        routes: Vec<RouteEntry>,
        default_route: &str,
        policy: RouterPolicy,
        keep: Vec<Keepalive>,
    ) -> Self {
        Self {
            routes: routes.into_iter().map(Arc::new).collect(),
            default_route: default_route.to_string(),
            policy,
            _keep: keep,
        }
    }

    pub fn default_route(&self) -> &str {
        &self.default_route
    }

    pub fn policy(&self) -> &RouterPolicy {
        &self.policy
    }

    pub fn route_names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    pub fn routes(&self) -> &[Arc<RouteEntry>] {
        &self.routes
    }

    pub fn route(&self, name: &str) -> Option<&Arc<RouteEntry>> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The circuit of each target of a route, as the router itself sees it.
    pub fn circuits(&self, name: &str) -> Vec<(String, CircuitSnapshot)> {
        let now = Instant::now();
        self.route(name)
            .map(|r| {
                r.targets
                    .iter()
                    .map(|t| (t.label(), t.circuit.snapshot(now)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn resolve(&self, route: Option<&str>) -> Result<Arc<RouteEntry>, RouteFailure> {
        let name = route.unwrap_or(&self.default_route);
        self.route(name).cloned().ok_or_else(|| RouteFailure {
            route: name.to_string(),
            attempts: vec![],
            error: ProviderError::new(
                ErrorClass::BadRequest,
                format!(
                    "unknown route `{name}` (configured: {})",
                    self.route_names().join(", ")
                ),
            ),
        })
    }

    fn chain(&self, names: &[String]) -> Vec<Arc<RouteEntry>> {
        names
            .iter()
            .filter_map(|n| self.route(n).cloned())
            .collect()
    }

    /// The routes one request may try, in order: the route, then each fallback followed by
    /// that fallback's own fallbacks (depth first, as LiteLLM nests them), each route once,
    /// at most `MAX_FALLBACK_DEPTH` levels deep. `large -> [tiny]` with `tiny -> [ollama,
    /// builtin]` tries large, tiny, ollama, builtin.
    pub fn plan(&self, primary: &Arc<RouteEntry>) -> Vec<Arc<RouteEntry>> {
        fn walk(
            router: &Router,
            route: &Arc<RouteEntry>,
            depth: usize,
            out: &mut Vec<Arc<RouteEntry>>,
        ) {
            if out.iter().any(|r| r.name == route.name) {
                return;
            }
            out.push(route.clone());
            if depth == MAX_FALLBACK_DEPTH {
                return;
            }
            for next in router.chain(&route.fallback) {
                walk(router, &next, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(self, primary, 0, &mut out);
        out
    }

    /// Streams an answer from `route` (or the default), falling back as configured.
    pub async fn chat_stream(
        &self,
        route: Option<&str>,
        req: &ChatRequest,
    ) -> Result<RoutedStream, RouteFailure> {
        let started = Instant::now();
        let primary = self.resolve(route)?;
        let t = self.policy.timeouts;
        let attempt = move |target: Arc<Target>, deadline: Instant| -> BoxFuture<'_, _> {
            Box::pin(open_stream(target, req, t, deadline))
        };
        let (stream, served_by, attempts) = self.run(primary, started, &attempt).await?;
        Ok(RoutedStream {
            stream,
            served_by,
            attempts,
            started,
        })
    }

    /// A complete answer (`stream: false` on the wire), with the same retries and fallbacks.
    pub async fn chat(
        &self,
        route: Option<&str>,
        req: &ChatRequest,
    ) -> Result<RoutedResponse, RouteFailure> {
        let started = Instant::now();
        let primary = self.resolve(route)?;
        let attempt = move |target: Arc<Target>, deadline: Instant| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let _busy = target.track();
                let total = deadline.saturating_duration_since(Instant::now());
                match timeout_at(deadline.into(), target.provider.chat(req)).await {
                    Ok(Ok(r)) => {
                        target.circuit.on_success();
                        Ok(r)
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(timed_out(ErrorClass::TotalTimeout, "answer", total)),
                }
            })
        };
        let (response, served_by, attempts) = self.run(primary, started, &attempt).await?;
        Ok(RoutedResponse {
            response,
            served_by,
            attempts,
            started,
        })
    }

    async fn run<'a, T>(
        &'a self,
        primary: Arc<RouteEntry>,
        started: Instant,
        attempt: &AttemptFn<'a, T>,
    ) -> Result<(T, ServedBy, Vec<Attempt>), RouteFailure> {
        let total = primary.total_timeout.unwrap_or(self.policy.timeouts.total);
        let deadline = started + total;
        let route_name = primary.name.clone();
        let mut plan = self.plan(&primary);
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut reported_open: HashSet<usize> = HashSet::new();
        // Targets that failed in a way a later pass cannot change (404, 401, quota).
        let mut spent: HashSet<usize> = HashSet::new();
        let mut used = 0u32;
        let mut last: Option<ProviderError> = None;
        let mut pass = 0u32;
        let fail = |attempts: Vec<Attempt>, error: ProviderError| RouteFailure {
            route: route_name.clone(),
            attempts,
            error,
        };

        'passes: loop {
            let mut queue: VecDeque<Arc<RouteEntry>> = plan.iter().cloned().collect();
            while let Some(route) = queue.pop_front() {
                let turn = route.turn.fetch_add(1, Ordering::Relaxed);
                for target in pool::order(&route.targets, Instant::now(), turn) {
                    if used >= self.policy.max_attempts {
                        break 'passes;
                    }
                    if spent.contains(&(Arc::as_ptr(&target) as usize)) {
                        continue;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        last = Some(timed_out(ErrorClass::TotalTimeout, "answer", total));
                        break 'passes;
                    }
                    match target.circuit.admit(now) {
                        Admission::Allowed => {}
                        Admission::Rejected { until } => {
                            if reported_open.insert(Arc::as_ptr(&target) as usize) {
                                let why = target
                                    .circuit
                                    .snapshot(now)
                                    .last_error
                                    .unwrap_or_else(|| "earlier failures".into());
                                let e = ProviderError::new(
                                    ErrorClass::CircuitOpen,
                                    format!(
                                        "skipped: circuit open for another {} ms after {why}",
                                        until.saturating_duration_since(now).as_millis()
                                    ),
                                );
                                attempts.push(Attempt::new(&route.name, &target, &e));
                                last.get_or_insert(e);
                            }
                            continue;
                        }
                        Admission::Probe => {
                            let (at, _) = limit(
                                now,
                                self.policy.timeouts.headers,
                                ErrorClass::HeadersTimeout,
                                deadline,
                            );
                            let probe = timeout_at(at.into(), target.provider.health()).await;
                            let err = match probe {
                                Ok(Ok(())) => None,
                                Ok(Err(e)) => Some(e),
                                Err(_) => Some(timed_out(
                                    ErrorClass::HeadersTimeout,
                                    "health answer",
                                    self.policy.timeouts.headers,
                                )),
                            };
                            target
                                .circuit
                                .on_probe(err.is_none(), err.as_ref(), Instant::now());
                            if let Some(mut e) = err {
                                e.message = format!("half-open probe failed: {}", e.message);
                                attempts.push(Attempt::new(&route.name, &target, &e));
                                last = Some(e);
                                continue;
                            }
                        }
                    }
                    used += 1;
                    match attempt(target.clone(), deadline).await {
                        Ok(v) => return Ok((v, served_by(&route, &target), attempts)),
                        Err(e) => {
                            target.circuit.on_failure(&e, Instant::now());
                            if !e.class.is_transient() {
                                spent.insert(Arc::as_ptr(&target) as usize);
                            }
                            attempts.push(Attempt::new(&route.name, &target, &e));
                            match e.class.disposition() {
                                Disposition::NextTarget => last = Some(e),
                                Disposition::ReturnToCaller | Disposition::Stop => {
                                    return Err(fail(attempts, e))
                                }
                                Disposition::LargerContext => {
                                    let bigger = self.chain(&route.context_fallback);
                                    if bigger.is_empty() {
                                        return Err(fail(attempts, e));
                                    }
                                    last = Some(e);
                                    plan = bigger;
                                    queue = plan.iter().cloned().collect();
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            // Everything was tried or is cooling down. Wait for the earliest chance when it is
            // near: a closed circuit after a backoff, or an open one when it may be probed.
            if used >= self.policy.max_attempts {
                break;
            }
            let now = Instant::now();
            let targets = plan
                .iter()
                .flat_map(|r| r.targets.iter())
                .filter(|t| !spent.contains(&(Arc::as_ptr(t) as usize)));
            if targets.clone().next().is_none() {
                break;
            }
            let any_closed = targets.clone().any(|t| !t.circuit.is_open(now));
            let next = if any_closed {
                let backoff = self.policy.backoff_base * (1u32 << pass.min(4));
                Some(now + backoff.min(Duration::from_secs(8)))
            } else {
                targets.filter_map(|t| t.circuit.reopens_at()).min()
            };
            match next {
                Some(at)
                    if at < deadline
                        && at.saturating_duration_since(now) <= self.policy.max_wait =>
                {
                    tokio::time::sleep_until(at.into()).await;
                    reported_open.clear();
                    pass += 1;
                }
                _ => break,
            }
        }
        let error = last.unwrap_or_else(|| {
            ProviderError::new(ErrorClass::CircuitOpen, "no target could be tried")
        });
        Err(fail(attempts, error))
    }
}

/// One streaming attempt: headers, then buffered events until the first content (the commit
/// point), all before the router lets go. Returns the committed stream.
async fn open_stream(
    target: Arc<Target>,
    req: &ChatRequest,
    t: Timeouts,
    deadline: Instant,
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
        let (at, class) = limit(
            Instant::now(),
            st.t.idle,
            ErrorClass::IdleTimeout,
            st.deadline,
        );
        let failure = match timeout_at(at.into(), inner.next()).await {
            Ok(Some(Ok(ev))) => {
                st.delivered += 1;
                return Some((Ok(ev), st));
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => e,
            Err(_) => {
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
