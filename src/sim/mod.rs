//! The built-in simulator: vLLM, OpenAI and Ollama flavours, byte-faithful to the real servers'
//! framing, with exact timing (first chunk at `ttft`, then one content chunk every `itl`) and
//! scripted faults. A test and demo tool; the real vLLM remains the truth.
pub mod fault;
mod listener;
pub mod metrics;
mod ollama;
mod openai;
mod openai_stream;
mod text;
pub mod tokenize;

pub use fault::{Fault, FaultKind};

use crate::secret::Secret;
use fault::Plan;
use metrics::VllmMetrics;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    Vllm,
    Openai,
    Ollama,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: Flavor,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub model: String,
    pub ttft: Duration,
    pub itl: Duration,
    /// Tokens per answer (fewer when the request's `max_tokens` is lower).
    pub tokens: u32,
    pub max_model_len: u32,
    pub faults: Vec<Fault>,
    pub seed: u64,
    /// Require `Authorization: Bearer KEY` on `/v1` paths (vLLM's `--api-key`).
    pub api_key: Option<Secret>,
    /// Keep the last request's body for `SimHandle::last_request` (tests); off when serving
    /// load, since it copies every request.
    pub record_requests: bool,
    /// At most this many requests generate at once, the rest wait (counted as waiting in
    /// `/metrics`, their wait in the TTFT), as vLLM's `--max-num-seqs` makes it: a server with a
    /// capacity, whose latency grows past it (load tests' knees). `None`: no limit.
    pub max_running: Option<u32>,
    /// Counts prompts and answers `/tokenize` (vLLM flavour).
    pub tokenizer: tokenize::SimTokenizer,
    /// Soak tests' faults: memory held and never freed, MiB a minute of uptime...
    pub leak_mib_per_min: f64,
    /// ... and time to first token growing by this many milliseconds a minute of uptime.
    pub slowdown_ms_per_min: f64,
}

impl SimConfig {
    pub fn new(flavor: Flavor) -> Self {
        Self {
            flavor,
            host: "127.0.0.1".into(),
            port: 0,
            model: match flavor {
                Flavor::Ollama => "qwen2.5:0.5b".into(),
                _ => "qwen2_5_0_5b".into(),
            },
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(5),
            tokens: 16,
            max_model_len: 2048,
            faults: vec![],
            seed: 0,
            api_key: None,
            record_requests: true,
            max_running: None,
            tokenizer: Default::default(),
            leak_mib_per_min: 0.0,
            slowdown_ms_per_min: 0.0,
        }
    }
    pub fn model(mut self, m: &str) -> Self {
        self.model = m.into();
        self
    }
    pub fn timing(mut self, ttft_ms: u64, itl_ms: u64, tokens: u32) -> Self {
        self.ttft = Duration::from_millis(ttft_ms);
        self.itl = Duration::from_millis(itl_ms);
        self.tokens = tokens;
        self
    }
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }
    pub fn port(mut self, p: u16) -> Self {
        self.port = p;
        self
    }
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub active: AtomicU64,
    pub completed: AtomicU64,
    /// Streams whose client went away before the end.
    pub aborted: AtomicU64,
    pub faults: AtomicU64,
    /// Requests whose client went away before the response headers were sent.
    pub abandoned: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub active: u64,
    pub completed: u64,
    pub aborted: u64,
    pub faults: u64,
    pub abandoned: u64,
}

pub(crate) struct SimState {
    cfg: SimConfig,
    faults: Mutex<Vec<(Fault, u64)>>,
    rng: Mutex<rand::rngs::StdRng>,
    stats: Stats,
    metrics: Mutex<VllmMetrics>,
    refusing: watch::Sender<bool>,
    /// The body of the last chat request, for tests that check what went on the wire.
    last_request: Mutex<Option<serde_json::Value>>,
    /// Every chat request's body, up to [`RECORDED`] (tests that check what went on the wire).
    requests: Mutex<Vec<serde_json::Value>>,
    /// Whether any fault is configured: without one, no dice are rolled and no lock taken.
    has_faults: std::sync::atomic::AtomicBool,
    /// `max_running` slots.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// When the simulator started (its slowdown grows from here).
    started: Instant,
    /// Memory leaked on purpose (`leak_mib_per_min`), never freed.
    leaked: Mutex<Vec<Vec<u8>>>,
}

/// A request waiting for a slot: counted as waiting until it has one or goes away.
pub(crate) struct Waiting(Arc<SimState>);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut m = self.0.metrics();
        m.waiting = m.waiting.saturating_sub(1);
    }
}

impl SimState {
    /// The extra wait before a request's first token (`slowdown_ms_per_min` of uptime).
    pub fn slowdown(&self) -> Duration {
        let min = self.started.elapsed().as_secs_f64() / 60.0;
        Duration::from_secs_f64((self.cfg.slowdown_ms_per_min * min / 1000.0).max(0.0))
    }

    /// Waits for a generation slot when the server has a capacity.
    pub(crate) async fn slot(self: &Arc<Self>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let sem = self.slots.clone()?;
        self.metrics().waiting += 1;
        let _w = Waiting(self.clone());
        sem.acquire_owned().await.ok()
    }
}

impl SimState {
    /// Rolls every fault for one request.
    fn plan(&self) -> Plan {
        let mut plan = Plan::default();
        if !self.has_faults.load(Ordering::Relaxed) {
            return plan;
        }
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        for (f, used) in faults.iter_mut() {
            if matches!(f.kind, FaultKind::Refuse { .. }) || f.count.is_some_and(|c| *used >= c) {
                continue;
            }
            if f.rate < 1.0 && rng.random::<f64>() >= f.rate {
                continue;
            }
            *used += 1;
            self.stats.faults.fetch_add(1, Ordering::Relaxed);
            match f.kind {
                FaultKind::Status { code, retry_after } => plan.status = Some((code, retry_after)),
                FaultKind::Reset { after } => plan.reset_after = Some(after),
                FaultKind::Truncate { after } => plan.truncate_after = Some(after),
                FaultKind::Stall { after, ms } => plan.stall_after = Some((after, ms)),
                FaultKind::Malformed { after } => plan.malformed_at = Some(after),
                FaultKind::Oversize { after } => plan.oversize_at = Some(after),
                FaultKind::SlowHeaders { ms } => plan.slow_headers_ms = Some(ms),
                FaultKind::Refuse { .. } => {}
                FaultKind::Linger => plan.linger = true,
            }
        }
        plan
    }

    fn metrics(&self) -> std::sync::MutexGuard<'_, VllmMetrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember_request(&self, body: &serde_json::Value) {
        if self.cfg.record_requests {
            *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) = Some(body.clone());
            let mut all = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            if all.len() < RECORDED {
                all.push(body.clone());
            }
        }
    }
}

/// How many request bodies a recording simulator keeps.
pub const RECORDED: usize = 10_000;

/// Tracks one generation from admission to its end (or the client's disappearance).
/// Counts a request whose handler was dropped before it answered: its client went away
/// while it waited for the response headers.
pub(crate) struct HeadersGuard(pub Option<Arc<SimState>>);

impl HeadersGuard {
    pub fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for HeadersGuard {
    fn drop(&mut self) {
        if let Some(st) = self.0.take() {
            st.stats.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct RequestGuard {
    st: Arc<SimState>,
    t0: Instant,
    kv_tokens: u64,
    pub finish: Option<&'static str>,
}

impl RequestGuard {
    fn new(st: Arc<SimState>, t0: Instant, kv_tokens: u64) -> Self {
        st.stats.active.fetch_add(1, Ordering::Relaxed);
        {
            let mut m = st.metrics();
            m.running += 1;
            m.kv_tokens_in_use += kv_tokens;
        }
        Self {
            st,
            t0,
            kv_tokens,
            finish: None,
        }
    }
}

impl RequestGuard {
    /// The answer ended with `reason` (counted as completed as the guard goes).
    pub(crate) fn complete(mut self, reason: &'static str) {
        self.finish = Some(reason);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let s = &self.st.stats;
        s.active.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.st.metrics();
        m.running = m.running.saturating_sub(1);
        m.kv_tokens_in_use = m.kv_tokens_in_use.saturating_sub(self.kv_tokens);
        match self.finish {
            Some(reason) => {
                s.completed.fetch_add(1, Ordering::Relaxed);
                if reason == "length" {
                    m.success_length += 1;
                } else {
                    m.success_stop += 1;
                }
                m.observe_e2e(self.t0.elapsed().as_secs_f64());
            }
            None => {
                s.aborted.fetch_add(1, Ordering::Relaxed);
                m.success_abort += 1;
            }
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    flavor: Flavor,
    state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("flavor", &self.flavor)
            .finish()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://host:port`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The URL a client is configured with: with `/v1` for OpenAI-compatible flavours.
    pub fn base_url(&self) -> String {
        match self.flavor {
            Flavor::Ollama => self.root_url(),
            _ => format!("http://{}/v1", self.addr),
        }
    }
    pub fn model(&self) -> &str {
        &self.state.cfg.model
    }
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.state.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            active: s.active.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            aborted: s.aborted.load(Ordering::Relaxed),
            faults: s.faults.load(Ordering::Relaxed),
            abandoned: s.abandoned.load(Ordering::Relaxed),
        }
    }
    /// Replaces the fault list (counts start again).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        let refuse = faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Refuse { .. }));
        self.state
            .has_faults
            .store(!faults.is_empty(), Ordering::Relaxed);
        *self.state.faults.lock().unwrap_or_else(|p| p.into_inner()) =
            faults.into_iter().map(|f| (f, 0)).collect();
        self.set_refusing(refuse);
    }
    /// Closes (true) or reopens (false) the listening socket.
    pub fn set_refusing(&self, refusing: bool) {
        let _ = self.state.refusing.send(refusing);
    }
    pub fn metrics_text(&self) -> String {
        self.state.metrics().render()
    }
    /// The JSON bodies of the chat requests received so far (the first [`RECORDED`]).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// The JSON body of the last chat request the simulator received.
    pub fn last_request(&self) -> Option<serde_json::Value> {
        self.state
            .last_request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
    let l = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port)).await?;
    let addr = l.local_addr()?;
    let refuse_for = cfg.faults.iter().find_map(|f| match f.kind {
        FaultKind::Refuse { for_ms } => Some(for_ms),
        _ => None,
    });
    let (tx, rx) = watch::channel(refuse_for.is_some());
    let flavor = cfg.flavor;
    let kv_capacity = u64::from(cfg.max_model_len) * 16;
    let state = Arc::new(SimState {
        slots: cfg
            .max_running
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize))),
        faults: Mutex::new(cfg.faults.iter().cloned().map(|f| (f, 0)).collect()),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(cfg.seed)),
        stats: Stats::default(),
        metrics: Mutex::new(VllmMetrics::new(&cfg.model, kv_capacity)),
        refusing: tx,
        last_request: Mutex::new(None),
        requests: Mutex::new(Vec::new()),
        has_faults: std::sync::atomic::AtomicBool::new(!cfg.faults.is_empty()),
        started: Instant::now(),
        leaked: Mutex::new(Vec::new()),
        cfg,
    });
    if state.cfg.leak_mib_per_min > 0.0 {
        let st = state.clone();
        tokio::spawn(async move {
            // A tenth of a second's share at a time, written so the pages are resident.
            let chunk = (st.cfg.leak_mib_per_min * 1024.0 * 1024.0 / 600.0) as usize;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                st.leaked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(vec![1u8; chunk.max(1)]);
            }
        });
    }
    if let Some(Some(ms)) = refuse_for {
        let st = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = st.refusing.send(false);
        });
    }
    let app = match flavor {
        Flavor::Ollama => ollama::router(state.clone()),
        _ => openai::router(state.clone()),
    };
    let listener = listener::GatedListener::new(l, rx)?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(SimHandle {
        addr,
        flavor,
        state,
        task,
    })
}
