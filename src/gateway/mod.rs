//! The gateway (DESIGN.md §11): one local endpoint, OpenAI- and Ollama-compatible, that puts
//! applications' LLM calls through the router (fallback chains, one attempt budget and one
//! deadline, circuits, `Retry-After`, separate timeouts). Dialects are translated at the edge;
//! the commit boundary is the first content sent to the client; a client that goes away drops
//! its upstream request; admission is bounded; `/metrics` and a live event feed show the
//! traffic without bodies.
pub mod admission;
pub mod auth;
pub mod dialect;
mod errors;
pub mod events;
pub mod feed;
mod feed_http;
mod feed_readers;
mod http;
pub mod metrics;
pub mod names;
pub mod parse;
mod relay;
mod server;
mod tracker;

pub use server::{run, Running};

use crate::config::Config;
use crate::provider::circuit::CircuitState;
use crate::provider::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The handlers' shared state.
type St = axum::extract::State<Arc<Shared>>;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

/// The gateway's fixed settings (a reload applies routes, names and keys, not these).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    pub max_queue: usize,
    pub queue_timeout: Duration,
    pub client_timeout: Duration,
    pub drain_timeout: Duration,
}

impl Settings {
    /// From the config's `gateway:` block; `listen` (the `--listen` flag) wins over the file.
    pub fn from_config(cfg: &Config, listen: Option<&str>) -> Result<Self, String> {
        let g = &cfg.gateway;
        let (addr, loopback) = match listen {
            Some(l) => crate::config::gateway_listen(l).map_err(|e| format!("--listen: {e}"))?,
            None => crate::config::gateway_listen(g.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?,
        };
        if !loopback && g.keys_env.is_none() {
            let what = if listen.is_some() {
                "--listen"
            } else {
                "gateway.listen"
            };
            return Err(format!(
                "{what}: `{addr}` is reachable from other machines, and the config has no client keys: set gateway.keys_env, or listen on 127.0.0.1"
            ));
        }
        Ok(Self {
            listen: addr,
            max_body_bytes: g.max_body_bytes.unwrap_or(1 << 20),
            max_in_flight: g.max_in_flight.unwrap_or(256),
            max_queue: g.max_queue.unwrap_or(1024),
            queue_timeout: Duration::from_millis(g.queue_timeout_ms.unwrap_or(30_000)),
            client_timeout: Duration::from_millis(g.client_timeout_ms.unwrap_or(10_000)),
            drain_timeout: Duration::from_secs_f64(g.drain_timeout_s.unwrap_or(30.0)),
        })
    }
}

/// What a reload replaces: the router, the names clients may use, the keys.
pub struct Live {
    pub router: Arc<Router>,
    pub names: names::Names,
    pub keys: auth::Keys,
    pub file: String,
}

impl Live {
    /// `router` is the one `cfg` describes (built by the caller, who resolves cluster routes).
    pub fn new(cfg: &Config, router: Router) -> Result<Self, String> {
        let keys = match &cfg.gateway.keys_env {
            Some(v) => auth::Keys::from_env(v)?,
            None => auth::Keys::default(),
        };
        Ok(Self {
            router: Arc::new(router),
            names: names::Names::from_config(cfg),
            keys,
            file: cfg.file.clone(),
        })
    }
}

/// Returns once the flag is (or becomes) true, or once its sender is gone: the gateway is
/// gone then (dropped without a shutdown), and nothing is left to wait for. The relays and
/// feed readers that also wait here hold the gateway, so for them it is the flag alone.
async fn until_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() || rx.changed().await.is_err() {
            return;
        }
    }
}

pub struct Shared {
    live: RwLock<Arc<Live>>,
    pub settings: Settings,
    pub admission: admission::Admission,
    pub metrics: metrics::Metrics,
    pub feed: feed::Feed,
    next_id: AtomicU64,
    /// Set when the drain timeout has passed: streams still running end in-band.
    abort: tokio::sync::watch::Sender<bool>,
    /// Set when the drain begins: the feed's readers are let go (they are not answers a
    /// drain should wait for).
    draining: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn new(settings: Settings, live: Live) -> Arc<Self> {
        Arc::new(Self {
            live: RwLock::new(Arc::new(live)),
            admission: admission::Admission::new(
                settings.max_in_flight,
                settings.max_queue,
                settings.queue_timeout,
            ),
            settings,
            metrics: metrics::Metrics::default(),
            feed: feed::Feed::new(),
            next_id: AtomicU64::new(1),
            abort: tokio::sync::watch::channel(false).0,
            draining: tokio::sync::watch::channel(false).0,
        })
    }

    /// The routes, names and keys new requests use; a request keeps the one it started with.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, live: Live) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn abort_streams(&self) -> tokio::sync::watch::Receiver<bool> {
        self.abort.subscribe()
    }

    pub(crate) fn drain_begun(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// The drain begins: feed readers end (after the events already sent to them).
    pub fn begin_drain(&self) {
        self.draining.send_replace(true);
    }

    /// Ends every stream still running with an in-band error (the drain timeout passed).
    pub fn cut_streams(&self) {
        self.abort.send_replace(true);
    }

    pub fn gauges(&self) -> metrics::Gauges {
        let live = self.live();
        let circuits = live
            .router
            .routes()
            .iter()
            .flat_map(|r| {
                live.router
                    .circuits(&r.name)
                    .into_iter()
                    .map(|(t, c)| (r.name.clone(), t, c))
            })
            .map(|(r, t, c)| {
                let s = match c.state {
                    CircuitState::Closed => 0,
                    CircuitState::HalfOpen => 1,
                    CircuitState::Open => 2,
                };
                (r, t, s)
            })
            .collect();
        metrics::Gauges {
            in_flight: self.admission.in_flight(),
            queued: self.admission.queued(),
            max_in_flight: self.settings.max_in_flight,
            circuits,
        }
    }

    /// Every target's circuit, route by route, as the feed's seconds carry them.
    pub fn circuit_seconds(&self) -> Vec<feed::CircuitSecond> {
        let live = self.live();
        let mut out = Vec::new();
        for r in live.router.routes() {
            for (target, c) in live.router.circuits(&r.name) {
                out.push(feed::CircuitSecond {
                    route: r.name.clone(),
                    target,
                    state: match c.state {
                        CircuitState::Closed => "closed",
                        CircuitState::HalfOpen => "half_open",
                        CircuitState::Open => "open",
                    }
                    .into(),
                    reopens_in_ms: c.reopens_in_ms,
                    consecutive_failures: c.consecutive_failures,
                    trips: c.trips,
                    last_error: c.last_error,
                    last_class: c.last_class.map(|k| k.as_str().to_string()),
                });
            }
        }
        out
    }

    /// A notice on the feed and in the log.
    pub fn notice(&self, message: String) {
        tracing::info!("{message}");
        eprintln!("[gateway] {message}");
        self.feed.publish(feed::Event::Notice {
            at_ms: crate::time::unix_now_ms(),
            message,
        });
    }
}
