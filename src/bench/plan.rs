//! What a load test is asked to do (load, stop rule, target), how it is steered while it
//! runs, and the progress it publishes.
use super::recorder::Slo;
use super::result::Series;
use super::workload::Workload;
use crate::provider::pool::{self, Target};
use crate::provider::{ProviderKind, Router};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// Keep this many requests in flight.
    Closed { concurrency: usize },
    /// Send at `rate` per second (gamma gaps of shape `burstiness`), at most
    /// `max_concurrency` in flight when given.
    Open {
        rate: f64,
        burstiness: f64,
        max_concurrency: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Requests(u64),
    DurationS(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub load: Load,
    pub stop: Stop,
    /// Requests sent and awaited before the measured run; left out of every figure.
    pub warmup: u64,
    pub workload: Workload,
    pub seed: u64,
    #[serde(skip)]
    pub slo: Slo,
    /// Per request, from sending to the end of the answer.
    pub timeout_s: f64,
    /// Longest gap between two events once the answer has started.
    pub idle_timeout_s: f64,
    pub temperature: Option<f32>,
    /// Keep per-request arrays for the saved result.
    pub detailed: bool,
    /// A `tokenizer.json` for exact prompt lengths (else the server's `/tokenize` on vLLM).
    pub tokenizer: Option<std::path::PathBuf>,
    /// Seconds between scrapes of a vLLM server's `/metrics` during the run (0: none).
    pub server_metrics_interval_s: f64,
    /// An open loop's rate ramping over the requests (with `Stop::Requests`).
    pub ramp: Option<super::arrivals::Ramp>,
    /// Which HTTP client streams the answers.
    pub http: HttpClient,
    /// A soak run: windows and a drift verdict (`bench --soak`).
    pub soak: Option<super::soak::SoakPlan>,
}

/// The load test's HTTP client: the lean one where it applies (SSE over plain `http://`, no
/// proxy), else the provider's reqwest client; or reqwest everywhere (to compare the two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpClient {
    #[default]
    Lean,
    Reqwest,
}

impl HttpClient {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "lean" => Ok(Self::Lean),
            "reqwest" => Ok(Self::Reqwest),
            other => Err(format!("--http-client `{other}`: use lean or reqwest")),
        }
    }
}

/// One request's server: its target and, where it applies, the lean client for it.
pub(super) struct Pick {
    pub target: Arc<Target>,
    pub lean: Option<Arc<crate::provider::lean::LeanClient>>,
}

impl Plan {
    pub fn new(load: Load, stop: Stop, workload: Workload) -> Self {
        Self {
            load,
            stop,
            warmup: 0,
            workload,
            seed: 0,
            slo: Slo::default(),
            timeout_s: 600.0,
            idle_timeout_s: 120.0,
            temperature: None,
            detailed: false,
            tokenizer: None,
            server_metrics_interval_s: 0.5,
            ramp: None,
            http: HttpClient::Lean,
            soak: None,
        }
    }
}

/// Where the load goes: a route's own targets, without the router's retries or fallback, so
/// the figures are that server's.
#[derive(Clone)]
pub struct BenchTarget {
    pub route: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    targets: Vec<Arc<Target>>,
    /// The lean client of each target where the lean path applies.
    lean: Vec<Option<Arc<crate::provider::lean::LeanClient>>>,
    turn: Arc<AtomicUsize>,
    /// Keeps the router (and the built-in simulator it may hold) alive.
    _router: Arc<Router>,
    /// Reads the server's memory at each soak window's close (the CLI and the console set it
    /// when they know which server serves the route).
    pub memory: Option<MemoryProbe>,
}

/// The server's memory, read once (its process group's RSS and GPU memory, or its `/metrics`).
pub type MemoryProbe =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Option<super::soak::Memory>> + Send + Sync>;

impl BenchTarget {
    pub fn from_router(router: Arc<Router>, route: Option<&str>) -> Result<Self, String> {
        let name = route.unwrap_or(router.default_route()).to_string();
        let entry = router
            .route(&name)
            .ok_or_else(|| {
                format!(
                    "unknown route `{name}` (routes: {})",
                    router.route_names().join(", ")
                )
            })?
            .clone();
        let first = entry.targets.first().ok_or("the route has no target")?;
        let connect = router.policy().timeouts.connect;
        let proxied = crate::provider::lean::proxy_in_env();
        let lean = entry
            .targets
            .iter()
            .map(|t| {
                let probe = t
                    .provider
                    .sse_request(&crate::provider::ChatRequest::default());
                probe
                    .filter(|_| !proxied)
                    .map(|r| Arc::new(crate::provider::lean::LeanClient::new(r.authority, connect)))
            })
            .collect();
        Ok(Self {
            route: name,
            kind: entry.kind,
            base_url: first.provider.base_url().to_string(),
            model: first.provider.model().to_string(),
            targets: entry.targets.clone(),
            lean,
            turn: Arc::new(AtomicUsize::new(0)),
            _router: router,
            memory: None,
        })
    }

    pub(super) fn pick(&self, http: HttpClient) -> Pick {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let target = pool::order(&self.targets, Instant::now(), turn)
            .into_iter()
            .next()
            .expect("a route has at least one target");
        let lean = match http {
            HttpClient::Reqwest => None,
            HttpClient::Lean => self
                .targets
                .iter()
                .position(|t| Arc::ptr_eq(t, &target))
                .and_then(|i| self.lean[i].clone()),
        };
        Pick { target, lean }
    }

    /// Which client a plan's requests use on this route.
    pub fn http_client(&self, http: HttpClient) -> &'static str {
        match http {
            HttpClient::Lean if self.lean.iter().all(Option::is_some) => "lean",
            HttpClient::Lean if self.lean.iter().any(Option::is_some) => "lean and reqwest",
            _ => "reqwest",
        }
    }

    /// A result with this target's identity (vLLM's `date`, `backend`, `label`, `model_id`,
    /// `base_url`); the run fills in the rest.
    pub(super) fn result(&self) -> super::result::BenchResult {
        super::result::BenchResult {
            date: crate::time::vllm_date(crate::time::unix_now()),
            backend: self.backend().to_string(),
            label: self.route.clone(),
            model_id: self.model.clone(),
            base_url: self.base_url.clone(),
            ..Default::default()
        }
    }

    pub(super) fn backend(&self) -> &'static str {
        match self.kind {
            ProviderKind::Ollama => "ollama",
            ProviderKind::Openai => "openai-chat",
            _ => "vllm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    SetConcurrency(usize),
    SetRate(f64),
    Cancel,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Starting,
    Warmup,
    Running,
    /// No more sending; waiting for the requests in flight.
    Draining,
    Done,
}

/// What the console shows while a run goes on (published at most 10 times a second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub elapsed_s: f64,
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub planned_requests: Option<u64>,
    pub planned_duration_s: Option<f64>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2el_p50_ms: Option<f64>,
    pub e2el_p99_ms: Option<f64>,
    pub errors: BTreeMap<String, u64>,
    /// The last two minutes, one point a second.
    pub series: Series,
    /// First second of `series` within the run.
    pub series_offset: usize,
    /// E2E latency histogram: (upper bound ms, count).
    pub e2el_bins: Vec<(f64, u64)>,
    /// The server's view (vLLM's `/metrics`) on the same seconds as `series`.
    pub server: Option<super::server_metrics::ServerSeries>,
    /// A soak run's closed windows so far.
    pub soak: Vec<super::soak::Window>,
}

pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);
