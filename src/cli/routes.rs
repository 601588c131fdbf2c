//! `anorag-tui routes`: probe every target of every route once, with vLLM's own numbers.
use crate::format;
use crate::telemetry::routes::{self, RouteHealth};
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RoutesArgs {
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each probe.
    #[arg(long, default_value_t = 5.0, value_parser = crate::input::seconds(0.1))]
    pub timeout: f64,
}

pub async fn run(explicit: Option<&Path>, a: RoutesArgs) -> ExitCode {
    let cfg = or_exit!(super::config_or_exit(explicit));
    let router = or_exit!(super::router_or_exit(&cfg).await);
    let limit = crate::input::duration(a.timeout.max(0.1));
    let table = routes::probe_all(&router, limit).await;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&table.routes).unwrap_or_default()
        );
    } else {
        print!("{}", render(&table.routes));
    }
    ExitCode::SUCCESS
}

/// The human table of route health.
pub fn render(reports: &[RouteHealth]) -> String {
    let mut out = format!(
        "{:<13} {:<11} {:<9} {:>9} {:<30} {:>4} {:>4} {:>5} {:<9} ERROR / MODELS\n",
        "ROUTE", "KIND", "STATE", "LATENCY", "TARGET", "RUN", "WAIT", "KV", "CIRCUIT"
    );
    for r in reports {
        for (i, t) in r.targets.iter().enumerate() {
            let name = if i == 0 {
                format!("{}{}", r.route, if r.default { "*" } else { "" })
            } else {
                String::new()
            };
            let m = t.metrics.as_ref();
            let tail = t.last_error.clone().unwrap_or_else(|| t.models.join(", "));
            out.push_str(&format!(
                "{:<13} {:<11} {:<9} {:>9} {:<30} {:>4} {:>4} {:>5} {:<9} {}\n",
                name,
                r.kind.as_str(),
                t.state.as_str(),
                format::opt(t.latency_ms, format::ms),
                format::clip(&t.url, 30),
                format::opt(m.and_then(|m| m.num_requests_running), |v| format!(
                    "{v:.0}"
                )),
                format::opt(m.and_then(|m| m.num_requests_waiting), |v| format!(
                    "{v:.0}"
                )),
                format::opt(m.and_then(|m| m.kv_cache_usage), |v| format!(
                    "{:.0}%",
                    v * 100.0
                )),
                format!("{:?}", t.circuit.state).to_lowercase(),
                tail
            ));
        }
        if !r.fallback.is_empty() {
            out.push_str(&format!(
                "{:<13} falls back to: {}\n",
                "",
                r.fallback.join(" -> ")
            ));
        }
    }
    out
}
