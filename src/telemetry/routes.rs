//! Route health: every target probed on an interval (with jitter, so targets are not hit in
//! lockstep), its latency and history kept, vLLM's own `/metrics` read alongside, and the
//! circuit shown as the router itself holds it.
use super::history::Ring;
use super::vllm_metrics::{self, Scrape, VllmMetrics};
use crate::protocol::same_model;
use crate::provider::circuit::CircuitSnapshot;
use crate::provider::pool::Target;
use crate::provider::{ProviderKind, Router};
use crate::time::unix_now;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not probed yet.
    Unknown,
    Up,
    /// Answers, but something is wrong: the model is missing, or the engine looks stalled.
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetHealth {
    pub url: String,
    pub model: String,
    pub state: Health,
    pub latency_ms: Option<f64>,
    pub consecutive_failures: u32,
    #[serde(rename = "error")]
    pub last_error: Option<String>,
    /// Unix seconds of the last probe.
    pub checked_at: Option<f64>,
    pub models: Vec<String>,
    /// vLLM's own numbers (vLLM targets only).
    pub metrics: Option<VllmMetrics>,
    /// The router's circuit for this target, read from the router itself.
    pub circuit: CircuitSnapshot,
    pub in_flight: usize,
    #[serde(skip)]
    pub latency_history: Ring,
    #[serde(skip)]
    pub running_history: Ring,
    #[serde(skip)]
    pub waiting_history: Ring,
    #[serde(skip)]
    pub kv_history: Ring,
    #[serde(skip)]
    pub gen_tps_history: Ring,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteHealth {
    pub route: String,
    pub kind: ProviderKind,
    pub default: bool,
    pub fallback: Vec<String>,
    pub targets: Vec<TargetHealth>,
}

impl RouteHealth {
    /// The best state among the route's targets.
    pub fn state(&self) -> Health {
        let states: Vec<Health> = self.targets.iter().map(|t| t.state).collect();
        [Health::Up, Health::Degraded, Health::Down]
            .into_iter()
            .find(|h| states.contains(h))
            .unwrap_or(Health::Unknown)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RouteTable {
    pub routes: Vec<RouteHealth>,
}

impl RouteTable {
    /// Every route and target of the router, none probed yet.
    pub fn from_router(router: &Router) -> Self {
        let now = Instant::now();
        RouteTable {
            routes: router
                .routes()
                .iter()
                .map(|r| RouteHealth {
                    route: r.name.clone(),
                    kind: r.kind,
                    default: r.name == router.default_route(),
                    // The whole chain a request walks, fallbacks of fallbacks included.
                    fallback: router
                        .plan(r)
                        .iter()
                        .skip(1)
                        .map(|f| f.name.clone())
                        .collect(),
                    targets: r
                        .targets
                        .iter()
                        .map(|t| TargetHealth {
                            url: t.provider.base_url().to_string(),
                            model: t.provider.model().to_string(),
                            state: Health::Unknown,
                            latency_ms: None,
                            consecutive_failures: 0,
                            last_error: None,
                            checked_at: None,
                            models: Vec::new(),
                            metrics: None,
                            circuit: t.circuit.snapshot(now),
                            in_flight: t.in_flight(),
                            latency_history: Ring::default(),
                            running_history: Ring::default(),
                            waiting_history: Ring::default(),
                            kv_history: Ring::default(),
                            gen_tps_history: Ring::default(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Copies each target's circuit and in-flight count from the router.
    pub fn refresh_circuits(&mut self, router: &Router) {
        let now = Instant::now();
        for (r, entry) in self.routes.iter_mut().zip(router.routes()) {
            for (t, target) in r.targets.iter_mut().zip(&entry.targets) {
                t.circuit = target.circuit.snapshot(now);
                t.in_flight = target.in_flight();
            }
        }
    }
}

/// What one probe of one target found.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<String>,
    pub degraded: Option<String>,
    pub models: Vec<String>,
    pub scrape: Option<Scrape>,
}

fn has_model(models: &[String], want: &str) -> bool {
    models.iter().any(|m| m == want || same_model(m, want))
}

/// Health check, model list and (for vLLM) a `/metrics` scrape, each bounded by `limit`.
pub async fn probe(t: &Target, client: &reqwest::Client, limit: Duration) -> ProbeResult {
    let p = &t.provider;
    let t0 = Instant::now();
    let health = tokio::time::timeout(limit, p.health()).await;
    let latency = t0.elapsed();
    let mut r = ProbeResult {
        ok: false,
        latency,
        error: None,
        degraded: None,
        models: Vec::new(),
        scrape: None,
    };
    match health {
        Err(_) => {
            r.error = Some(format!("no answer within {:.1} s", limit.as_secs_f64()));
            return r;
        }
        Ok(Err(e)) => {
            r.error = Some(e.to_string());
            return r;
        }
        Ok(Ok(())) => r.ok = true,
    }
    match tokio::time::timeout(limit, p.list_models()).await {
        Ok(Ok(models)) => {
            if !has_model(&models, p.model()) {
                r.degraded = Some(format!(
                    "model `{}` is not served here (it serves: {})",
                    p.model(),
                    if models.is_empty() {
                        "nothing".into()
                    } else {
                        models.join(", ")
                    }
                ));
            }
            r.models = models;
        }
        Ok(Err(e)) => r.degraded = Some(format!("cannot list models: {e}")),
        Err(_) => r.degraded = Some("the model list did not come".into()),
    }
    if let Some(url) = p.metrics_url() {
        if let Ok(Ok(resp)) = tokio::time::timeout(limit, client.get(&url).send()).await {
            if resp.status().is_success() {
                let read =
                    crate::provider::body::read_capped(resp, crate::provider::body::MAX_PAGE_BYTES);
                match tokio::time::timeout(limit, read).await {
                    Ok(Ok(bytes)) => {
                        let text = String::from_utf8_lossy(&bytes);
                        let s = Scrape::parse(&text, Some(p.model()), Instant::now());
                        if s.is_vllm() {
                            r.scrape = Some(s);
                        }
                    }
                    Ok(Err(e)) => r.degraded = Some(format!("/metrics: {}", e.message)),
                    Err(_) => {}
                }
            }
        }
    }
    r
}

/// Folds a probe into a target's health and histories.
pub fn apply(t: &mut TargetHealth, r: ProbeResult, prev_scrape: Option<&Scrape>) -> Option<Scrape> {
    t.checked_at = Some(unix_now());
    if r.ok {
        t.latency_ms = Some(r.latency.as_secs_f64() * 1000.0);
        t.consecutive_failures = 0;
        t.models = r.models;
        t.state = Health::Up;
        t.last_error = None;
        if let Some(d) = r.degraded {
            t.state = Health::Degraded;
            t.last_error = Some(d);
        }
    } else {
        t.latency_ms = None;
        t.consecutive_failures += 1;
        t.state = Health::Down;
        t.last_error = r.error;
    }
    t.latency_history.push(t.latency_ms);
    match &r.scrape {
        Some(s) => {
            let m = vllm_metrics::derive(prev_scrape, s);
            if m.looks_stalled() && t.state == Health::Up {
                t.state = Health::Degraded;
                t.last_error = Some(format!(
                    "engine looks stalled: {} waiting, {} running, no tokens in {:.0} s",
                    m.num_requests_waiting.unwrap_or(0.0),
                    m.num_requests_running.unwrap_or(0.0),
                    m.window_s
                ));
            }
            t.running_history.push(m.num_requests_running);
            t.waiting_history.push(m.num_requests_waiting);
            t.kv_history.push(m.kv_cache_usage);
            t.gen_tps_history.push(m.generation_tokens_per_s);
            t.metrics = Some(m);
        }
        None if !r.ok => {
            t.running_history.push(None);
            t.waiting_history.push(None);
            t.kv_history.push(None);
            t.gen_tps_history.push(None);
        }
        None => {}
    }
    r.scrape
}

/// Probes every target once, all at the same time (`anorag-tui routes`, `status`).
pub async fn probe_all(router: &Router, limit: Duration) -> RouteTable {
    let client = metrics_client(limit);
    let mut table = RouteTable::from_router(router);
    let jobs = router
        .routes()
        .iter()
        .flat_map(|r| r.targets.iter().cloned())
        .map(|t| {
            let client = client.clone();
            async move { probe(&t, &client, limit).await }
        });
    let results = futures::future::join_all(jobs).await;
    let mut it = results.into_iter();
    for r in &mut table.routes {
        for t in &mut r.targets {
            if let Some(res) = it.next() {
                apply(t, res, None);
            }
        }
    }
    table.refresh_circuits(router);
    table
}

pub fn metrics_client(limit: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(limit)
        .build()
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeCmd {
    /// Probe this route (every route when `None`) now.
    Now(Option<String>),
}

#[derive(Debug, Clone, Copy)]
pub struct ProberConfig {
    pub interval: Duration,
    pub timeout: Duration,
    /// How often circuits and in-flight counts are copied from the router.
    pub refresh: Duration,
}

impl Default for ProberConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            refresh: Duration::from_secs(1),
        }
    }
}

/// Runs the prober until every receiver of `tx` is gone.
pub fn spawn(
    router: Arc<Router>,
    cfg: ProberConfig,
    tx: watch::Sender<RouteTable>,
) -> mpsc::Sender<ProbeCmd> {
    let (cmd_tx, mut cmd_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let client = metrics_client(cfg.timeout);
        let mut table = RouteTable::from_router(&router);
        let targets: Vec<(usize, usize, Arc<Target>)> = router
            .routes()
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| {
                r.targets
                    .iter()
                    .enumerate()
                    .map(move |(ti, t)| (ri, ti, t.clone()))
            })
            .collect();
        let mut scrapes: Vec<Option<Scrape>> = vec![None; targets.len()];
        // Spread the first probes over a fraction of the interval.
        let start = tokio::time::Instant::now();
        let mut due: Vec<tokio::time::Instant> = (0..targets.len())
            .map(|i| start + Duration::from_millis(50 * i as u64))
            .collect();
        let mut refresh_at = start + cfg.refresh;
        loop {
            let next = due
                .iter()
                .copied()
                .min()
                .unwrap_or(refresh_at)
                .min(refresh_at);
            tokio::select! {
                cmd = cmd_rx.recv() => match cmd {
                    None => return,
                    Some(ProbeCmd::Now(route)) => {
                        let now = tokio::time::Instant::now();
                        for (i, (ri, _, _)) in targets.iter().enumerate() {
                            if route.as_deref().is_none_or(|r| table.routes[*ri].route == r) {
                                due[i] = now;
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(next) => {
                    let now = tokio::time::Instant::now();
                    let ready: Vec<usize> = (0..targets.len()).filter(|i| due[*i] <= now).collect();
                    let jobs = ready.iter().map(|&i| {
                        let t = targets[i].2.clone();
                        let client = client.clone();
                        async move { probe(&t, &client, cfg.timeout).await }
                    });
                    let results = futures::future::join_all(jobs).await;
                    for (&i, res) in ready.iter().zip(results) {
                        let (ri, ti, _) = targets[i];
                        let s = apply(&mut table.routes[ri].targets[ti], res, scrapes[i].as_ref());
                        if s.is_some() {
                            scrapes[i] = s;
                        }
                        let jitter = 0.85 + 0.3 * rand::random::<f64>();
                        due[i] = tokio::time::Instant::now() + cfg.interval.mul_f64(jitter);
                    }
                    if now >= refresh_at || !ready.is_empty() {
                        table.refresh_circuits(&router);
                        refresh_at = tokio::time::Instant::now() + cfg.refresh;
                    }
                    let changed = tx.send_if_modified(|cur| {
                        if *cur == table {
                            false
                        } else {
                            *cur = table.clone();
                            true
                        }
                    });
                    if !changed && tx.is_closed() {
                        return;
                    }
                }
            }
        }
    });
    cmd_tx
}
