//! The router: one owner of retries. Walks a route's targets and its fallback chain under one
//! attempt budget and one deadline, with separate connect / headers / first-token / idle /
//! total timeouts. A stream is committed at its first content; after that a failure ends it
//! with an in-band error and is never retried.
use crate::provider::circuit::{Admission, CircuitSnapshot};
use crate::provider::error::{Disposition, ErrorClass, ProviderError};
use crate::provider::pool::{self, Target};
use crate::provider::ChatRequest;
use futures::future::BoxFuture;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

mod stream;
mod types;
use stream::{limit, open_stream, timed_out};
pub use types::*;

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

/// One attempt whose answer comes whole (a non-streamed chat, embeddings): the target counts
/// it in flight, the request's deadline bounds it, and a success closes its circuit.
async fn whole<T>(
    target: &Target,
    deadline: Instant,
    what: &str,
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let _busy = target.track();
    let total = deadline.saturating_duration_since(Instant::now());
    match timeout_at(deadline.into(), call).await {
        Ok(Ok(r)) => {
            target.circuit.on_success();
            Ok(r)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(timed_out(ErrorClass::TotalTimeout, what, total)),
    }
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
        self.chat_stream_watched(route, req, &|_| {}).await
    }

    /// [`Router::chat_stream`], telling `watch` each step as it happens.
    pub async fn chat_stream_watched(
        &self,
        route: Option<&str>,
        req: &ChatRequest,
        watch: Watch<'_>,
    ) -> Result<RoutedStream, RouteFailure> {
        let started = Instant::now();
        let primary = self.resolve(route)?;
        let t = self.policy.timeouts;
        let attempt = move |target: Arc<Target>, deadline: Instant| -> BoxFuture<'_, _> {
            Box::pin(open_stream(target, req, t, deadline, watch))
        };
        let (stream, served_by, attempts) = self.run(primary, started, &attempt, watch).await?;
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
                let t = &target;
                whole(t, deadline, "answer", t.provider.chat(req)).await
            })
        };
        let (response, served_by, attempts) = self.run(primary, started, &attempt, &|_| {}).await?;
        Ok(RoutedResponse {
            response,
            served_by,
            attempts,
            started,
        })
    }

    /// Embeddings from `route` (or the default), with the same retries and fallbacks.
    pub async fn embed(
        &self,
        route: Option<&str>,
        inputs: &[String],
    ) -> Result<(crate::provider::Embeddings, ServedBy, Vec<Attempt>), RouteFailure> {
        self.embed_watched(route, inputs, &|_| {}).await
    }

    /// [`Router::embed`], telling `watch` each step as it happens.
    pub async fn embed_watched(
        &self,
        route: Option<&str>,
        inputs: &[String],
        watch: Watch<'_>,
    ) -> Result<(crate::provider::Embeddings, ServedBy, Vec<Attempt>), RouteFailure> {
        let started = Instant::now();
        let primary = self.resolve(route)?;
        let attempt = move |target: Arc<Target>, deadline: Instant| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let t = &target;
                whole(t, deadline, "embeddings", t.provider.embed(inputs)).await
            })
        };
        self.run(primary, started, &attempt, watch).await
    }

    async fn run<'a, T>(
        &'a self,
        primary: Arc<RouteEntry>,
        started: Instant,
        attempt: &AttemptFn<'a, T>,
        watch: Watch<'_>,
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
                    match self.admit(&target, now, deadline, &mut reported_open).await {
                        Admit::Go => {}
                        Admit::Quiet => continue,
                        Admit::Skip(e, first_only) => {
                            attempts.push(Attempt::new(&route.name, &target, &e));
                            watch(Step::Failed(&attempts[attempts.len() - 1]));
                            if first_only {
                                last.get_or_insert(e);
                            } else {
                                last = Some(e);
                            }
                            continue;
                        }
                    }
                    used += 1;
                    watch(Step::Trying {
                        route: &route.name,
                        target: &target.label(),
                        n: used,
                    });
                    match attempt(target.clone(), deadline).await {
                        Ok(v) => return Ok((v, served_by(&route, &target), attempts)),
                        Err(e) => {
                            target.circuit.on_failure(&e, Instant::now());
                            if !e.class.is_transient() {
                                spent.insert(Arc::as_ptr(&target) as usize);
                            }
                            attempts.push(Attempt::new(&route.name, &target, &e));
                            watch(Step::Failed(&attempts[attempts.len() - 1]));
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
            match self.next_pass_at(&plan, &spent, pass, deadline) {
                Some(at) => {
                    tokio::time::sleep_until(at.into()).await;
                    reported_open.clear();
                    pass += 1;
                }
                None => break,
            }
        }
        let error = last.unwrap_or_else(|| {
            ProviderError::new(ErrorClass::CircuitOpen, "no target could be tried")
        });
        Err(fail(attempts, error))
    }

    /// What `target`'s circuit says of a request now: go, skip it with the reason (once per
    /// pass for an open circuit: it keeps the first reason as the route's), or skip quietly
    /// (its open circuit was reported this pass). A half-open circuit is probed here.
    async fn admit(
        &self,
        target: &Target,
        now: Instant,
        deadline: Instant,
        reported_open: &mut HashSet<usize>,
    ) -> Admit {
        match target.circuit.admit(now) {
            Admission::Allowed => Admit::Go,
            Admission::Rejected { until } => {
                if !reported_open.insert(target as *const Target as usize) {
                    return Admit::Quiet;
                }
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
                Admit::Skip(e, true)
            }
            Admission::Probe => {
                let headers = self.policy.timeouts.headers;
                let (at, _) = limit(now, headers, ErrorClass::HeadersTimeout, deadline);
                let err = match timeout_at(at.into(), target.provider.health()).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(timed_out(
                        ErrorClass::HeadersTimeout,
                        "health answer",
                        headers,
                    )),
                };
                target
                    .circuit
                    .on_probe(err.is_none(), err.as_ref(), Instant::now());
                match err {
                    None => Admit::Go,
                    Some(mut e) => {
                        e.message = format!("half-open probe failed: {}", e.message);
                        Admit::Skip(e, false)
                    }
                }
            }
        }
    }

    /// Everything was tried or is cooling down: the earliest chance worth waiting for, when
    /// it is near (a closed circuit after a backoff, or an open one when it may be probed).
    fn next_pass_at(
        &self,
        plan: &[Arc<RouteEntry>],
        spent: &HashSet<usize>,
        pass: u32,
        deadline: Instant,
    ) -> Option<Instant> {
        let now = Instant::now();
        let targets = plan
            .iter()
            .flat_map(|r| r.targets.iter())
            .filter(|t| !spent.contains(&(Arc::as_ptr(t) as usize)));
        targets.clone().next()?;
        let any_closed = targets.clone().any(|t| !t.circuit.is_open(now));
        let next = if any_closed {
            let backoff = self.policy.backoff_base * (1u32 << pass.min(4));
            Some(now + backoff.min(Duration::from_secs(8)))
        } else {
            targets.filter_map(|t| t.circuit.reopens_at()).min()
        }?;
        (next < deadline && next.saturating_duration_since(now) <= self.policy.max_wait)
            .then_some(next)
    }
}

/// What a target's circuit says of one request.
enum Admit {
    Go,
    Quiet,
    /// Skipped with this reason; true: it becomes the route's reason only if none is yet.
    Skip(ProviderError, bool),
}
