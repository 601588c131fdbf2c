//! A Ray cluster's GPUs, from its dashboard's node table: one sample per node, named
//! `CLUSTER/NODE`, beside NVML and DCGM in the same pane.
use super::{GpuDevice, GpuProcess, GpuSample, GpuSource, GpuStatus};
use crate::cluster::{ClusterNode, RayClient};
use async_trait::async_trait;

pub struct RayGpus {
    client: RayClient,
}

impl RayGpus {
    pub fn new(client: RayClient) -> Self {
        Self { client }
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
