//! NVML through nvml-wrapper, which loads the driver library at run time: the binary starts
//! on any machine, and a machine without a driver reads as a status.
use super::GpuStatus;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

/// Maps NVML's errors onto the statuses an operator can act on.
pub fn status_of(e: &NvmlError) -> GpuStatus {
    match e {
        NvmlError::LibloadingError(_)
        | NvmlError::LibraryNotFound
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::FunctionNotFound => GpuStatus::NoLibrary,
        NvmlError::DriverNotLoaded => GpuStatus::DriverNotLoaded,
        NvmlError::LibRmVersionMismatch => GpuStatus::DriverMismatch,
        NvmlError::NoPermission | NvmlError::OperatingSystem => GpuStatus::NoPermission,
        NvmlError::GpuLost | NvmlError::ResetRequired => GpuStatus::GpuLost,
        other => GpuStatus::Error(other.to_string()),
    }
}

/// Loads NVML: `libnvidia-ml.so.1` first (what a driver install provides), then the
/// unversioned name (only present with development packages).
pub fn open() -> Result<Nvml, GpuStatus> {
    let first = Nvml::builder()
        .lib_path(std::ffi::OsStr::new("libnvidia-ml.so.1"))
        .init();
    match first {
        Ok(n) => Ok(n),
        Err(e1) => match Nvml::init() {
            Ok(n) => Ok(n),
            // Report the more telling of the two failures.
            Err(e2) => {
                let s1 = status_of(&e1);
                Err(if s1 == GpuStatus::NoLibrary {
                    status_of(&e2)
                } else {
                    s1
                })
            }
        },
    }
}

/// How many GPUs this machine has: zero, with the reason, when there is no usable driver.
pub fn device_count() -> (u32, GpuStatus) {
    match open() {
        Ok(n) => match n.device_count() {
            Ok(0) => (0, GpuStatus::NoDevices),
            Ok(c) => (c, GpuStatus::Ok),
            Err(e) => (0, status_of(&e)),
        },
        Err(s) => (0, s),
    }
}
