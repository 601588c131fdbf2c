//! Config -> router: one HTTP client, one circuit per distinct target, the built-in simulator
//! started in-process on an ephemeral loopback port and reached through the real client.
use super::circuit::{Circuit, CircuitPolicy};
use super::ollama::OllamaClient;
use super::openai::OpenAiCompat;
use super::pool::Target;
use super::router::{Keepalive, RouteEntry, Router, RouterPolicy, Timeouts};
use super::{Provider, ProviderKind, SamplingDefaults};
use crate::config::{Config, Params, RouteSpec};
use crate::secret::Secret;
use crate::sim::{self, Flavor, SimConfig};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error("route `{route}`: cannot start the built-in simulator: {source}")]
    Builtin {
        route: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("the configuration defines no route")]
    NoRoutes,
}

pub fn policy(cfg: &Config) -> RouterPolicy {
    let r = &cfg.llm.router;
    let d = RouterPolicy::default();
    let ms = |v: Option<u64>, def: Duration| v.map(Duration::from_millis).unwrap_or(def);
    RouterPolicy {
        max_attempts: r.max_attempts.unwrap_or(d.max_attempts),
        timeouts: Timeouts {
            connect: ms(r.connect_timeout_ms, d.timeouts.connect),
            headers: ms(r.headers_timeout_ms, d.timeouts.headers),
            first_token: ms(r.first_token_timeout_ms, d.timeouts.first_token),
            idle: ms(r.idle_timeout_ms, d.timeouts.idle),
            total: r
                .total_timeout_s
                .map(crate::input::duration)
                .unwrap_or(d.timeouts.total),
        },
        max_wait: ms(r.max_wait_ms, d.max_wait),
        backoff_base: d.backoff_base,
    }
}

pub fn circuit_policy(cfg: &Config) -> CircuitPolicy {
    let c = &cfg.llm.router.circuit;
    let d = CircuitPolicy::default();
    CircuitPolicy {
        failure_threshold: c.failures.unwrap_or(d.failure_threshold).max(1),
        base_cooldown: c
            .cooldown_ms
            .map(Duration::from_millis)
            .unwrap_or(d.base_cooldown),
        max_cooldown: c
            .max_cooldown_ms
            .map(Duration::from_millis)
            .unwrap_or(d.max_cooldown),
        ..d
    }
}

fn defaults(p: &Params) -> SamplingDefaults {
    SamplingDefaults {
        temperature: p.temperature,
        top_p: p.top_p,
        max_tokens: p.max_tokens,
    }
}

pub fn http_client(connect: Duration) -> Result<reqwest::Client, FactoryError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| FactoryError::Client(e.to_string()))
}

/// Builds the router for every route in `cfg`. Must run inside a tokio runtime.
pub async fn build(cfg: &Config) -> Result<Router, FactoryError> {
    build_with(cfg, policy(cfg), circuit_policy(cfg)).await
}

pub async fn build_with(
    cfg: &Config,
    policy: RouterPolicy,
    circuit: CircuitPolicy,
) -> Result<Router, FactoryError> {
    let client = http_client(policy.timeouts.connect)?;
    let specs = cfg.routes();
    if specs.is_empty() {
        return Err(FactoryError::NoRoutes);
    }
    let mut keep: Vec<Keepalive> = Vec::new();
    // Two routes naming the same server share its circuit and its in-flight count.
    let mut shared: HashMap<String, (Arc<Circuit>, Arc<AtomicUsize>)> = HashMap::new();
    let mut routes = Vec::new();
    for spec in &specs {
        let providers = providers_for(spec, &client, policy.timeouts.connect, &mut keep).await?;
        let targets: Vec<Arc<Target>> = providers
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("{}|{}|{}", p.kind(), p.base_url(), p.model());
                let (c, f) = shared
                    .entry(key)
                    .or_insert_with(|| {
                        (
                            Arc::new(Circuit::new(circuit)),
                            Arc::new(AtomicUsize::new(0)),
                        )
                    })
                    .clone();
                Arc::new(Target::new(&spec.name, i, p, c, f))
            })
            .collect();
        if targets.len() > 1 {
            spawn_residency_refresh(&targets);
        }
        routes.push(RouteEntry {
            name: spec.name.clone(),
            kind: spec.kind,
            targets,
            fallback: spec.fallback.clone(),
            context_fallback: spec.context_fallback.clone(),
            total_timeout: spec.params.timeout.map(crate::input::duration),
            turn: AtomicUsize::new(0),
        });
    }
    let default = cfg.default_route().unwrap_or_else(|| specs[0].name.clone());
    Ok(Router::new(routes, &default, policy, keep))
}

async fn providers_for(
    spec: &RouteSpec,
    client: &reqwest::Client,
    connect: Duration,
    keep: &mut Vec<Keepalive>,
) -> Result<Vec<Arc<dyn Provider>>, FactoryError> {
    let d = defaults(&spec.params);
    let key = spec.api_key_env.as_deref().and_then(Secret::from_env);
    Ok(match spec.kind {
        ProviderKind::VllmOpenai | ProviderKind::Openai => spec
            .urls
            .iter()
            .map(|u| {
                Arc::new(
                    OpenAiCompat::new(spec.kind, u, &spec.model, client.clone(), key.clone(), d)
                        .with_lean_streams(connect),
                ) as Arc<dyn Provider>
            })
            .collect(),
        ProviderKind::Ollama => spec
            .urls
            .iter()
            .map(|u| {
                Arc::new(OllamaClient::new(u, &spec.model, client.clone(), d)) as Arc<dyn Provider>
            })
            .collect(),
        ProviderKind::Builtin => {
            let b = spec
                .builtin
                .clone()
                .unwrap_or_else(|| crate::config::BuiltinBlock {
                    model: "anorag-sim".into(),
                    ttft_ms: 40,
                    itl_ms: 15,
                    tokens: 48,
                    params: Params::default(),
                });
            let mut sim_cfg = SimConfig::new(Flavor::Vllm)
                .model(&b.model)
                .timing(b.ttft_ms, b.itl_ms, b.tokens);
            sim_cfg.record_requests = false;
            let sim = sim::start(sim_cfg)
                .await
                .map_err(|source| FactoryError::Builtin {
                    route: spec.name.clone(),
                    source,
                })?;
            let p = OpenAiCompat::new(
                ProviderKind::Builtin,
                &sim.base_url(),
                &b.model,
                client.clone(),
                None,
                d,
            )
            .with_lean_streams(connect);
            keep.push(Box::new(sim));
            vec![Arc::new(p)]
        }
    })
}

/// Keeps each pool member's "model loaded" flag fresh; stops when the router is dropped.
fn spawn_residency_refresh(targets: &[Arc<Target>]) {
    let weak: Vec<Weak<Target>> = targets.iter().map(Arc::downgrade).collect();
    tokio::spawn(async move {
        loop {
            for w in &weak {
                let Some(t) = w.upgrade() else { return };
                t.refresh_residency().await;
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
}
