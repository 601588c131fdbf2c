//! The sampling engines behind the console: GPUs and the host on a steady interval, published
//! as latest values (with their histories) through `watch` channels.
use super::gpu::{self, GpuSample, GpuSource};
use super::history::Ring;
use super::host::{HostSample, HostSampler};
use super::routes::ProberConfig;
use crate::config::Config;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The running servers as (name, main pid), for matching processes to servers.
pub type ServersFn = Arc<dyn Fn() -> Vec<(String, i32)> + Send + Sync>;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceHistory {
    pub source: String,
    pub index: u32,
    /// Percent.
    pub util: Ring,
    /// Fraction of memory used.
    pub memory: Ring,
    pub power_w: Ring,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuView {
    /// One per source (this machine first), latest reading.
    pub samples: Vec<GpuSample>,
    #[serde(skip)]
    pub history: Vec<DeviceHistory>,
    /// How many readings have been taken.
    pub ticks: u64,
}

impl GpuView {
    pub fn history_of(&self, source: &str, index: u32) -> Option<&DeviceHistory> {
        self.history
            .iter()
            .find(|h| h.source == source && h.index == index)
    }

    /// Takes a reading in: the latest samples, and each device's history.
    pub fn record(&mut self, samples: Vec<GpuSample>) {
        for s in &samples {
            for d in &s.devices {
                let h = match self
                    .history
                    .iter_mut()
                    .position(|h| h.source == s.source && h.index == d.index)
                {
                    Some(i) => &mut self.history[i],
                    None => {
                        self.history.push(DeviceHistory {
                            source: s.source.clone(),
                            index: d.index,
                            ..DeviceHistory::default()
                        });
                        self.history.last_mut().expect("just pushed")
                    }
                };
                h.util.push(d.utilization_gpu_pct.map(f64::from));
                h.memory.push(d.memory_fraction());
                h.power_w.push(d.power_draw_w);
            }
        }
        self.samples = samples;
        self.ticks += 1;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostView {
    pub sample: HostSample,
    #[serde(skip)]
    pub cpu: Ring,
    #[serde(skip)]
    pub memory: Ring,
}

/// Reads every source once.
pub async fn read_all(
    sources: &mut [Box<dyn GpuSource>],
    servers: &[(String, i32)],
) -> Vec<GpuSample> {
    let mut out = Vec::with_capacity(sources.len());
    for s in sources.iter_mut() {
        for mut sample in s.samples().await {
            gpu::attribute(&mut sample.devices, servers);
            out.push(sample);
        }
    }
    out
}

/// The GPU and host samplers on one clock: each tick makes one trip to a blocking thread for
/// the state directory, /proc and the host (one wake-up, not three), then reads the GPUs.
pub fn spawn_machine(
    mut sources: Vec<Box<dyn GpuSource>>,
    interval: Duration,
    servers: ServersFn,
    gpu_tx: watch::Sender<GpuView>,
    host_tx: watch::Sender<HostView>,
) {
    tokio::spawn(async move {
        let mut sampler = Some(HostSampler::new());
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if gpu_tx.is_closed() && host_tx.is_closed() {
                return;
            }
            let (Some(mut own), list) = (sampler.take(), servers.clone()) else {
                return;
            };
            let Ok((own, running, s)) = tokio::task::spawn_blocking(move || {
                let running = list();
                let s = own.sample(&running);
                (own, running, s)
            })
            .await
            else {
                return;
            };
            sampler = Some(own);
            host_tx.send_modify(|v| {
                v.cpu.push(Some(s.cpu_pct));
                v.memory.push(Some(
                    s.memory_used_bytes as f64 / s.memory_total_bytes.max(1) as f64,
                ));
                v.sample = s;
            });
            let samples = read_all(&mut sources, &running).await;
            gpu_tx.send_modify(|v| v.record(samples));
        }
    });
}

/// Every live telemetry engine, as the console and `status --watch` run them.
pub struct Live {
    pub gpu_rx: watch::Receiver<GpuView>,
    pub host_rx: watch::Receiver<HostView>,
    pub routes_rx: watch::Receiver<crate::telemetry::routes::RouteTable>,
    pub probe_tx: tokio::sync::mpsc::Sender<crate::telemetry::routes::ProbeCmd>,
}

/// Starts the GPU and host samplers (every `every`) and the route prober; they run until
/// every receiver is gone.
pub fn spawn_live(
    cfg: &crate::config::Config,
    router: &Arc<crate::provider::Router>,
    servers: ServersFn,
    clusters: Option<gpu::ray::ClustersFn>,
    every: Duration,
    probe: crate::telemetry::routes::ProberConfig,
) -> Live {
    use crate::telemetry::routes::{self, RouteTable};
    let (gpu_tx, gpu_rx) = watch::channel(GpuView::default());
    let (host_tx, host_rx) = watch::channel(HostView::default());
    let (route_tx, routes_rx) = watch::channel(RouteTable::from_router(router));
    spawn_machine(
        sources_from_config(cfg, clusters),
        every,
        servers,
        gpu_tx,
        host_tx,
    );
    let probe_tx = routes::spawn(router.clone(), probe, route_tx);
    Live {
        gpu_rx,
        host_rx,
        routes_rx,
        probe_tx,
    }
}

/// This machine's NVML plus every configured DCGM exporter and cluster; a cluster's nodes come
/// from `clusters` when something else already reads them.
pub fn sources_from_config(
    cfg: &crate::config::Config,
    clusters: Option<gpu::ray::ClustersFn>,
) -> Vec<Box<dyn GpuSource>> {
    let mut v: Vec<Box<dyn GpuSource>> = Vec::new();
    if cfg.telemetry.local_gpu.unwrap_or(true) {
        v.push(Box::new(gpu::nvml::NvmlSource::new()));
    }
    for s in &cfg.gpu_sources {
        v.push(Box::new(gpu::dcgm::DcgmSource::new(&s.name, &s.url)));
    }
    // Every cluster's nodes, from its node table: one pane shows the fleet.
    for (name, c) in &cfg.clusters {
        if let Ok(client) = crate::cluster::RayClient::new(name, c) {
            v.push(Box::new(gpu::ray::RayGpus::new(client, clusters.clone())));
        }
    }
    v
}

/// How often to sample GPUs and the host, and how to probe routes: the config's, or `over`
/// seconds for both (`status --watch --interval`).
pub fn intervals(cfg: &Config, over: Option<f64>) -> (Duration, ProberConfig) {
    let t = &cfg.telemetry;
    let sample = over
        .map(crate::input::duration)
        .or(t.interval_ms.map(Duration::from_millis))
        .unwrap_or(Duration::from_secs(1));
    let d = ProberConfig::default();
    let probe = ProberConfig {
        interval: over
            .map(crate::input::duration)
            .or(t.probe_interval_ms.map(Duration::from_millis))
            .unwrap_or(d.interval),
        timeout: t
            .probe_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(d.timeout),
        refresh: sample,
    };
    (sample, probe)
}
