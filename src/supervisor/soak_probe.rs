//! Where a soak run reads the server's memory: the process group of the local server that
//! serves the route (RSS of every process, GPU memory of them by NVML), else vLLM's own
//! `process_resident_memory_bytes` from its `/metrics`.
use crate::bench::soak::Memory;
use crate::bench::{BenchTarget, MemoryProbe};
use crate::config::Config;
use std::sync::Arc;

/// The probe, and where it reads (said once at the start).
pub fn probe_for(cfg: &Config, t: &BenchTarget) -> (Option<MemoryProbe>, String) {
    let local = super::Supervisor::from_env(Arc::new(cfg.clone()))
        .ok()
        .and_then(|s| {
            s.statuses()
                .into_iter()
                .find(|st| st.is_running() && st.route.as_deref() == Some(t.route.as_str()))
        });
    if let Some(st) = local.and_then(|st| Some((st.name.clone(), st.pgid.or(st.pid)?))) {
        let (name, pgid) = st;
        let source = format!("server {name}'s process group {pgid}");
        let src = source.clone();
        let probe: MemoryProbe = Arc::new(move || {
            let src = src.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || group_memory(pgid, src))
                    .await
                    .ok()
            })
        });
        return (Some(probe), source);
    }
    if t.kind == crate::provider::ProviderKind::VllmOpenai {
        let root = t
            .base_url
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string();
        let url = format!("{root}/metrics");
        let said = format!("{url} (process_resident_memory_bytes)");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let probe: MemoryProbe = Arc::new(move || {
            let (client, url) = (client.clone(), url.clone());
            Box::pin(async move {
                let text = client.get(&url).send().await.ok()?.text().await.ok()?;
                let page = crate::telemetry::prometheus::Page::parse(&text);
                Some(Memory {
                    rss_bytes: page
                        .sum("process_resident_memory_bytes", &[])
                        .map(|v| v as u64),
                    gpu_bytes: None,
                    source: url,
                })
            })
        });
        return (Some(probe), said);
    }
    (
        None,
        "nowhere (no local server serves this route, and it is not vLLM)".into(),
    )
}

/// RSS of every process in the group, and their GPU memory when NVML sees them.
pub fn group_memory(pgid: i32, source: String) -> Memory {
    let pids = crate::procfs::group_members(pgid);
    let rss: u64 = pids
        .iter()
        .filter_map(|p| crate::procfs::rss_bytes(*p))
        .sum();
    let gpu = crate::telemetry::gpu::nvml::NvmlSource::new().read();
    let gpu_bytes = gpu.status.is_ok().then(|| {
        gpu.devices
            .iter()
            .flat_map(|d| d.processes.iter())
            .filter(|p| pids.contains(&(p.pid as i32)))
            .filter_map(|p| p.used_memory_bytes)
            .sum()
    });
    Memory {
        rss_bytes: (!pids.is_empty()).then_some(rss),
        gpu_bytes,
        source,
    }
}
