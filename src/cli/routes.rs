//! `anorag-tui routes`: probe every target of every route once.
use crate::provider::circuit::CircuitSnapshot;
use crate::provider::pool::Target;
use crate::provider::{factory, ProviderError};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RoutesArgs {
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each probe.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub url: String,
    pub model: String,
    /// `up`, `degraded` (answers but lacks the model) or `down`.
    pub state: &'static str,
    pub latency_ms: Option<f64>,
    pub models: Vec<String>,
    pub error: Option<String>,
    pub circuit: CircuitSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    pub route: String,
    pub kind: String,
    pub default: bool,
    pub fallback: Vec<String>,
    pub targets: Vec<TargetReport>,
}

/// One health check plus the model list, each bounded by `limit`.
pub async fn probe_target(t: &Arc<Target>, limit: Duration) -> TargetReport {
    let p = &t.provider;
    let start = Instant::now();
    let health = tokio::time::timeout(limit, p.health()).await;
    let latency = start.elapsed();
    let mut r = TargetReport {
        url: p.base_url().to_string(),
        model: p.model().to_string(),
        state: "down",
        latency_ms: None,
        models: vec![],
        error: None,
        circuit: t.circuit.snapshot(Instant::now()),
    };
    let err = |e: ProviderError| Some(e.to_string());
    match health {
        Err(_) => r.error = Some(format!("no answer within {:.1} s", limit.as_secs_f64())),
        Ok(Err(e)) => r.error = err(e),
        Ok(Ok(())) => {
            r.latency_ms = Some(latency.as_secs_f64() * 1000.0);
            r.state = "up";
            match tokio::time::timeout(limit, p.list_models()).await {
                Ok(Ok(models)) => {
                    let has = models.iter().any(|m| {
                        crate::provider::ollama::same_model(m, p.model()) || m == p.model()
                    });
                    if !has {
                        r.state = "degraded";
                        r.error = Some(format!("model `{}` is not served here", p.model()));
                    }
                    r.models = models;
                }
                Ok(Err(e)) => {
                    r.state = "degraded";
                    r.error = err(e);
                }
                Err(_) => r.state = "degraded",
            }
        }
    }
    r
}

pub async fn run(explicit: Option<&Path>, a: RoutesArgs) -> ExitCode {
    let (cfg, _) = match super::load_config(explicit) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let router = match factory::build(&cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let limit = Duration::from_secs_f64(a.timeout.max(0.1));
    let mut jobs = Vec::new();
    for route in router.routes() {
        let route = route.clone();
        let default = route.name == router.default_route();
        jobs.push(async move {
            let targets =
                futures::future::join_all(route.targets.iter().map(|t| probe_target(t, limit)))
                    .await;
            RouteReport {
                route: route.name.clone(),
                kind: route.kind.to_string(),
                default,
                fallback: route.fallback.clone(),
                targets,
            }
        });
    }
    let reports = futures::future::join_all(jobs).await;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
    } else {
        print_table(&reports);
    }
    ExitCode::SUCCESS
}

fn print_table(reports: &[RouteReport]) {
    println!(
        "{:<14} {:<12} {:<9} {:>9}  {:<34} ERROR / MODELS",
        "ROUTE", "KIND", "STATE", "LATENCY", "TARGET"
    );
    for r in reports {
        for (i, t) in r.targets.iter().enumerate() {
            let name = if i == 0 {
                format!("{}{}", r.route, if r.default { "*" } else { "" })
            } else {
                String::new()
            };
            let lat = t
                .latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "-".into());
            let tail = t.error.clone().unwrap_or_else(|| t.models.join(", "));
            println!(
                "{:<14} {:<12} {:<9} {:>9}  {:<34} {}",
                name, r.kind, t.state, lat, t.url, tail
            );
        }
        if !r.fallback.is_empty() {
            println!("{:<14} falls back to: {}", "", r.fallback.join(" -> "));
        }
    }
}
