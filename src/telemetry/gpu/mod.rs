//! GPU readings behind one interface, from NVML on this machine or a DCGM exporter elsewhere.
//! Every field may be missing, and "no GPU" is a status to show, never an error.
pub mod nvml;

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
