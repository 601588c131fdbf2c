//! `anorag-tui cluster [NAME] [--json] [--watch]`: every configured cluster's nodes (CPUs,
//! memory, GPUs, in total and in use) and jobs (ours and others').
use crate::cluster::{self, ClusterView, RayClient};
use crate::format;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Only this cluster (a name under `clusters:`).
    pub name: Option<String>,
    /// JSON is `{"clusters":[...]}`.
    #[command(flatten)]
    pub r: super::repeat::Repeat,
}

pub async fn run(explicit: Option<&Path>, a: ClusterArgs) -> ExitCode {
    let cfg = or_exit!(super::config_or_exit(explicit));
    let mut clients = Vec::new();
    for (name, c) in &cfg.clusters {
        if a.name.as_ref().is_some_and(|n| n != name) {
            continue;
        }
        match RayClient::new(name, c) {
            Ok(r) => clients.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if clients.is_empty() {
        eprintln!(
            "error: {}",
            match &a.name {
                Some(n) => format!("no cluster `{n}` in the config"),
                None => "the config has no `clusters:` (e.g. clusters: {farm: {kind: ray, address: http://head:8265}})".into(),
            }
        );
        return ExitCode::from(2);
    }
    let mut views: Vec<Option<ClusterView>> = vec![None; clients.len()];
    let mut n = 0u64;
    loop {
        let reads = clients
            .iter()
            .zip(&views)
            .map(|(c, last)| cluster::read(c, last.as_ref()));
        let fresh = futures::future::join_all(reads).await;
        views = fresh.into_iter().map(Some).collect();
        let shown: Vec<&ClusterView> = views.iter().flatten().collect();
        if a.r.json {
            println!("{}", serde_json::json!({ "clusters": shown }));
        } else {
            if a.r.watch && n > 0 {
                println!();
            }
            for v in &shown {
                print!("{}", render(v));
            }
        }
        n += 1;
        if a.r.done(n) {
            let failed = shown.iter().any(|v| v.error.is_some());
            return if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
        if !a.r.wait().await {
            return ExitCode::SUCCESS;
        }
    }
}

fn amount(used: f64, total: f64) -> String {
    let t = |x: f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    format!("{}/{}", t(used), t(total))
}

/// The human view of one cluster.
pub fn render(v: &ClusterView) -> String {
    let mut out = String::new();
    let alive = v.nodes.iter().filter(|n| n.alive).count();
    out.push_str(&format!(
        "CLUSTER {} ({}) · Ray {} · {alive}/{} nodes alive\n",
        v.cluster,
        v.address,
        v.version.as_deref().unwrap_or("?"),
        v.nodes.len()
    ));
    if let Some(e) = &v.error {
        let since = v
            .read_at
            .map(|t| format!("; last known state from {}", crate::time::rfc3339(t)))
            .unwrap_or_default();
        out.push_str(&format!("  {e}{since}\n"));
    }
    out.push_str(&format!(
        "  {:<10} {:<6} {:<4} {:<16} {:>9} {:>7} {:<19} {}\n",
        "NODE", "STATE", "HEAD", "ADDRESS", "CPU", "GPU", "MEMORY", "ID"
    ));
    for n in &v.nodes {
        out.push_str(&format!(
            "  {:<10} {:<6} {:<4} {:<16} {:>9} {:>7} {:<19} {}\n",
            format::clip(&n.label(), 10),
            if n.alive { "alive" } else { "dead" },
            if n.head { "*" } else { "" },
            format::clip(&n.address, 16),
            amount(n.cpus_used, n.cpus_total),
            amount(n.gpus_used, n.gpus_total),
            format::bytes_of(n.memory_used_bytes, n.memory_total_bytes),
            n.id.chars().take(12).collect::<String>(),
        ));
        for g in &n.gpus {
            let mem = match (g.memory_used_bytes, g.memory_total_bytes) {
                (Some(u), Some(t)) => format::bytes_of(u, t),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "      GPU{:<2} {:<24} {:>5} {}\n",
                g.index,
                format::clip(g.name.as_deref().unwrap_or("-"), 24),
                format::opt(g.utilization_pct, |u| format!("{u}%")),
                mem
            ));
        }
    }
    out.push_str(&format!(
        "  {:<28} {:<9} {:<10} {:<12} {:>8}  {}\n",
        "JOB", "STATUS", "NODE", "PROFILE", "AGE", "ENTRYPOINT"
    ));
    let now_ms = (crate::time::unix_now() * 1000.0) as u64;
    for j in &v.jobs {
        let node = j
            .node_id
            .as_ref()
            .and_then(|id| v.nodes.iter().find(|n| &n.id == id))
            .map(|n| n.label())
            .unwrap_or_else(|| "-".into());
        let age = j
            .start_ms
            .map(|s| format::duration_s(now_ms.saturating_sub(s) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  {:<28} {:<9} {:<10} {:<12} {:>8}  {}\n",
            format::clip(&j.id, 28),
            j.status.as_str(),
            format::clip(&node, 10),
            format::clip(j.profile().unwrap_or("-"), 12),
            age,
            format::clip(&j.entrypoint, 60)
        ));
    }
    out
}
