//! A Ray cluster's GPUs, from its dashboard's node table: one sample per node, named
//! `CLUSTER/NODE`, beside NVML and DCGM in the same pane.
use super::{GpuDevice, GpuProcess, GpuSample, GpuSource, GpuStatus};
use crate::cluster::{ClusterNode, ClusterView, RayClient};
use async_trait::async_trait;
use std::sync::Arc;

/// A cluster's latest reading by name, from whoever already reads it (the supervisor's
/// cluster watch); `None` while it has none.
pub type ClustersFn = Arc<dyn Fn(&str) -> Option<ClusterView> + Send + Sync>;

pub struct RayGpus {
    client: RayClient,
    read_elsewhere: Option<ClustersFn>,
}

impl RayGpus {
    /// Nodes from `read_elsewhere` when it has a reading, else from the node table itself.
    pub fn new(client: RayClient, read_elsewhere: Option<ClustersFn>) -> Self {
        Self {
            client,
            read_elsewhere,
        }
    }

    fn samples_of(&self, v: &ClusterView) -> Vec<GpuSample> {
        let name = self.client.name();
        if let Some(e) = &v.error {
            return vec![GpuSample::empty(name, GpuStatus::Unreachable(e.clone()))];
        }
        if v.nodes.is_empty() {
            return vec![GpuSample::empty(name, GpuStatus::NoDevices)];
        }
        v.nodes.iter().map(|n| node_sample(name, n)).collect()
    }
}

/// One node's sample: its GPUs, or why there are none to show.
pub fn node_sample(cluster: &str, n: &ClusterNode) -> GpuSample {
    let source = format!("{cluster}/{}", n.label());
    if !n.alive {
        return GpuSample::empty(&source, GpuStatus::Unreachable("the node is dead".into()));
    }
    if n.gpus.is_empty() {
        return GpuSample::empty(&source, GpuStatus::NoDevices);
    }
    GpuSample {
        devices: n
            .gpus
            .iter()
            .map(|g| GpuDevice {
                index: g.index,
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                memory_used_bytes: g.memory_used_bytes,
                memory_total_bytes: g.memory_total_bytes,
                utilization_gpu_pct: g.utilization_pct,
                temperature_c: g.temperature_c,
                power_draw_w: g.power_w,
                processes: g
                    .processes
                    .iter()
                    .map(|(pid, bytes)| GpuProcess {
                        pid: *pid,
                        used_memory_bytes: Some(*bytes),
                        ..GpuProcess::default()
                    })
                    .collect(),
                ..GpuDevice::default()
            })
            .collect(),
        ..GpuSample::empty(&source, GpuStatus::Ok)
    }
}

#[async_trait]
impl GpuSource for RayGpus {
    fn name(&self) -> &str {
        self.client.name()
    }

    async fn sample(&mut self) -> GpuSample {
        self.samples()
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| GpuSample::empty(self.client.name(), GpuStatus::NoDevices))
    }

    async fn samples(&mut self) -> Vec<GpuSample> {
        if let Some(v) = self
            .read_elsewhere
            .as_ref()
            .and_then(|f| f(self.client.name()))
        {
            return self.samples_of(&v);
        }
        match self.client.nodes().await {
            Ok(nodes) if !nodes.is_empty() => nodes
                .iter()
                .map(|n| node_sample(self.client.name(), n))
                .collect(),
            Ok(_) => vec![GpuSample::empty(self.client.name(), GpuStatus::NoDevices)],
            Err(e) => vec![GpuSample::empty(
                self.client.name(),
                GpuStatus::Unreachable(e.to_string()),
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{ClusterConfig, ClusterKind};

    fn node(id: &str, alive: bool, gpus: usize) -> ClusterNode {
        ClusterNode {
            id: id.into(),
            address: "127.0.0.1".into(),
            hostname: Some(id.into()),
            head: false,
            alive,
            cpus_total: 2.0,
            cpus_used: 0.0,
            gpus_total: gpus as f64,
            gpus_used: 0.0,
            memory_total_bytes: 1 << 30,
            memory_used_bytes: 0,
            resources: Default::default(),
            gpus: (0..gpus as u32)
                .map(|index| crate::cluster::NodeGpu {
                    index,
                    name: Some("H100".into()),
                    uuid: None,
                    utilization_pct: Some(7),
                    memory_used_bytes: Some(1 << 20),
                    memory_total_bytes: Some(80 << 30),
                    temperature_c: None,
                    power_w: None,
                    processes: vec![(42, 1 << 20)],
                })
                .collect(),
        }
    }

    /// Nodes come from the reading someone else made: the client points where nothing
    /// listens, so a request of its own would show the cluster unreachable.
    #[tokio::test]
    async fn nodes_come_from_the_engines_reading_when_there_is_one() {
        let cfg = ClusterConfig {
            kind: ClusterKind::Ray,
            address: "http://127.0.0.1:9".into(),
            token_env: None,
            host: None,
        };
        let client = RayClient::new("lab", &cfg).unwrap();
        let view = std::sync::Mutex::new(Some(ClusterView {
            cluster: "lab".into(),
            nodes: vec![node("a", true, 2), node("b", false, 0)],
            ..ClusterView::default()
        }));
        let shared = Arc::new(view);
        let reading = shared.clone();
        let f: ClustersFn = Arc::new(move |name: &str| {
            assert_eq!(name, "lab");
            reading.lock().unwrap().clone()
        });
        let mut src = RayGpus::new(client, Some(f));
        let s = src.samples().await;
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].status, GpuStatus::Ok);
        assert_eq!(s[0].devices.len(), 2);
        assert_eq!(s[0].devices[0].processes[0].pid, 42);
        assert!(matches!(s[1].status, GpuStatus::Unreachable(_)));

        // The engine's reading failed: the cluster shows unreachable with its reason, not
        // the nodes last known.
        shared.lock().unwrap().as_mut().unwrap().error = Some("connection refused".into());
        let s = src.samples().await;
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].status,
            GpuStatus::Unreachable("connection refused".into())
        );

        // No reading yet: the source reads the node table itself (here: nothing listens).
        *shared.lock().unwrap() = None;
        let s = src.samples().await;
        assert!(matches!(s[0].status, GpuStatus::Unreachable(_)), "{s:?}");
    }
}
