//! A scripted GPU source for tests and demos of the GPU views: it plays back samples (every
//! status, fields missing) in order, then repeats the last. Like the simulator, it is a
//! test tool; the console reads NVML or DCGM.
use super::{GpuDevice, GpuProcess, GpuSample, GpuSource, GpuStatus};
use async_trait::async_trait;

pub struct FakeGpuSource {
    name: String,
    script: Vec<GpuSample>,
    next: usize,
}

impl FakeGpuSource {
    pub fn new(name: &str, script: Vec<GpuSample>) -> Self {
        Self {
            name: name.to_string(),
            script,
            next: 0,
        }
    }

    /// One H100-like device with every field, holding `used_gib` with one process.
    pub fn device(index: u32, used_gib: f64, util: u32, pid: u32) -> GpuDevice {
        GpuDevice {
            index,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            uuid: Some(format!("GPU-00000000-0000-0000-0000-00000000000{index}")),
            memory_used_bytes: Some((used_gib * (1u64 << 30) as f64) as u64),
            memory_total_bytes: Some(81_559 * (1 << 20)),
            utilization_gpu_pct: Some(util),
            utilization_memory_pct: Some(util / 2),
            temperature_c: Some(41 + util / 10),
            power_draw_w: Some(70.0 + f64::from(util) * 5.0),
            power_limit_w: Some(700.0),
            sm_clock_mhz: Some(1980),
            fan_pct: None,
            processes: vec![GpuProcess {
                pid,
                used_memory_bytes: Some((used_gib * (1u64 << 30) as f64) as u64),
                name: Some("python3".into()),
                server: None,
            }],
            error: None,
        }
    }

    /// A device that reports only what old or virtual GPUs report.
    pub fn sparse_device(index: u32) -> GpuDevice {
        GpuDevice {
            index,
            name: Some("GRID A100D-4C".into()),
            memory_used_bytes: Some(512 << 20),
            memory_total_bytes: Some(4 << 30),
            ..GpuDevice::default()
        }
    }

    pub fn sample(status: GpuStatus, devices: Vec<GpuDevice>) -> GpuSample {
        GpuSample {
            source: "local".into(),
            status,
            driver_version: Some("550.54.15".into()),
            devices,
        }
    }
}

#[async_trait]
impl GpuSource for FakeGpuSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn sample(&mut self) -> GpuSample {
        let i = self.next.min(self.script.len().saturating_sub(1));
        self.next += 1;
        let mut s = self
            .script
            .get(i)
            .cloned()
            .unwrap_or_else(|| GpuSample::empty(&self.name, GpuStatus::NoDevices));
        s.source = self.name.clone();
        s
    }
}
