//! GPU readings behind one interface, from NVML on this machine or a DCGM exporter elsewhere.
//! Every field may be missing, and "no GPU" is a status to show, never an error.
pub mod dcgm;
pub mod fake;
pub mod nvml;
pub mod ray;

use async_trait::async_trait;
use serde::Serialize;

/// Why there are (or are no) readings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum GpuStatus {
    Ok,
    /// The driver library (libnvidia-ml) is not installed: no NVIDIA driver here.
    NoLibrary,
    /// The library loaded but the kernel driver is not running.
    DriverNotLoaded,
    /// Library and kernel driver versions differ (usually: reboot after a driver update).
    DriverMismatch,
    NoPermission,
    /// A device fell off the bus or needs a reset.
    GpuLost,
    /// The driver answered and reports no device.
    NoDevices,
    /// A remote source (DCGM exporter) could not be read.
    Unreachable(String),
    Error(String),
}

impl GpuStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, GpuStatus::Ok)
    }

    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            GpuStatus::Ok => "ok",
            GpuStatus::NoLibrary | GpuStatus::DriverNotLoaded | GpuStatus::NoDevices => "no GPU",
            GpuStatus::DriverMismatch => "driver mismatch",
            GpuStatus::NoPermission => "no permission",
            GpuStatus::GpuLost => "GPU lost",
            GpuStatus::Unreachable(_) => "unreachable",
            GpuStatus::Error(_) => "error",
        }
    }

    /// One line for an operator.
    pub fn describe(&self) -> String {
        match self {
            GpuStatus::Ok => "ok".into(),
            GpuStatus::NoLibrary => "no GPU: the NVIDIA driver library (libnvidia-ml.so) is not installed".into(),
            GpuStatus::DriverNotLoaded => "no GPU: the NVIDIA kernel driver is not loaded".into(),
            GpuStatus::DriverMismatch => "GPU unavailable: the driver library and kernel module versions differ (reboot, or reload the module)".into(),
            GpuStatus::NoPermission => "GPU unavailable: no permission to query the NVIDIA driver".into(),
            GpuStatus::GpuLost => "GPU lost: a device fell off the bus or needs a reset".into(),
            GpuStatus::NoDevices => "no GPU: the driver reports no device".into(),
            GpuStatus::Unreachable(e) => format!("unreachable: {e}"),
            GpuStatus::Error(e) => format!("GPU error: {e}"),
        }
    }
}

/// A process holding GPU memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
    pub name: Option<String>,
    /// The server (launch profile) this process belongs to, when it is one of ours.
    pub server: Option<String>,
}

/// One device's readings. Any field the driver or exporter does not give stays `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub utilization_gpu_pct: Option<u32>,
    pub utilization_memory_pct: Option<u32>,
    pub temperature_c: Option<u32>,
    pub power_draw_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    pub fan_pct: Option<u32>,
    pub processes: Vec<GpuProcess>,
    /// This device could not be read (lost, for one), while others could.
    pub error: Option<String>,
}

impl GpuDevice {
    pub fn memory_fraction(&self) -> Option<f64> {
        match (self.memory_used_bytes, self.memory_total_bytes) {
            (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
            _ => None,
        }
    }
}

/// One source's readings at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSample {
    /// `local`, or the configured name of a remote source.
    pub source: String,
    #[serde(flatten)]
    pub status: GpuStatus,
    pub driver_version: Option<String>,
    pub devices: Vec<GpuDevice>,
}

impl GpuSample {
    pub fn empty(source: &str, status: GpuStatus) -> Self {
        Self {
            source: source.to_string(),
            status,
            driver_version: None,
            devices: Vec::new(),
        }
    }
}

/// Something that can be asked for GPU readings.
#[async_trait]
pub trait GpuSource: Send {
    fn name(&self) -> &str;
    async fn sample(&mut self) -> GpuSample;
    /// A source of several machines (a cluster) gives one sample per machine.
    async fn samples(&mut self) -> Vec<GpuSample> {
        vec![self.sample().await]
    }
}

/// Attributes GPU processes to servers: by process group, or by ancestry (workers that left
/// the group are still below the server's main process).
pub fn attribute(devices: &mut [GpuDevice], servers: &[(String, i32)]) {
    if servers.is_empty() {
        return;
    }
    for d in devices {
        for p in &mut d.processes {
            let mut pid = p.pid as i32;
            for _ in 0..16 {
                let Some(st) = crate::procfs::stat(pid) else {
                    break;
                };
                if p.name.is_none() {
                    p.name = Some(st.comm.clone());
                }
                if let Some((name, _)) = servers.iter().find(|(_, pg)| *pg == st.pgrp || *pg == pid)
                {
                    p.server = Some(name.clone());
                    break;
                }
                if st.ppid <= 1 {
                    break;
                }
                pid = st.ppid;
            }
        }
    }
}
