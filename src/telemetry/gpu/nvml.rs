//! NVML through nvml-wrapper, which loads the driver library at run time: the binary starts
//! on any machine, and a machine without a driver reads as a status.
use super::{GpuDevice, GpuProcess, GpuSample, GpuSource, GpuStatus};
use async_trait::async_trait;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use std::time::{Duration, Instant};

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

/// A failed init is retried now and then: a driver can be loaded after we start.
const RETRY_INIT: Duration = Duration::from_secs(30);

pub struct NvmlSource {
    nvml: Option<Nvml>,
    last_status: GpuStatus,
    next_try: Instant,
}

impl Default for NvmlSource {
    fn default() -> Self {
        Self::new()
    }
}

impl NvmlSource {
    pub fn new() -> Self {
        Self {
            nvml: None,
            last_status: GpuStatus::NoLibrary,
            next_try: Instant::now(),
        }
    }

    /// One synchronous reading (NVML calls take microseconds to a few milliseconds).
    pub fn read(&mut self) -> GpuSample {
        if self.nvml.is_none() && Instant::now() >= self.next_try {
            match open() {
                Ok(n) => self.nvml = Some(n),
                Err(s) => {
                    self.last_status = s;
                    self.next_try = Instant::now() + RETRY_INIT;
                }
            }
        }
        let Some(nvml) = &self.nvml else {
            return GpuSample::empty("local", self.last_status.clone());
        };
        let count = match nvml.device_count() {
            Ok(c) => c,
            Err(e) => {
                let s = status_of(&e);
                // A broken handle is dropped and opened again later.
                self.nvml = None;
                self.next_try = Instant::now() + RETRY_INIT;
                self.last_status = s.clone();
                return GpuSample::empty("local", s);
            }
        };
        if count == 0 {
            return GpuSample::empty("local", GpuStatus::NoDevices);
        }
        let mut devices = Vec::with_capacity(count as usize);
        let mut lost = 0;
        for i in 0..count {
            match nvml.device_by_index(i) {
                Ok(d) => devices.push(read_device(i, &d)),
                Err(e) => {
                    lost += 1;
                    devices.push(GpuDevice {
                        index: i,
                        error: Some(status_of(&e).describe()),
                        ..GpuDevice::default()
                    });
                }
            }
        }
        GpuSample {
            source: "local".into(),
            status: if lost == count {
                GpuStatus::GpuLost
            } else {
                GpuStatus::Ok
            },
            driver_version: nvml.sys_driver_version().ok(),
            devices,
        }
    }
}

fn read_device(index: u32, d: &nvml_wrapper::Device) -> GpuDevice {
    let mem = d.memory_info().ok();
    let util = d.utilization_rates().ok();
    let mut processes: Vec<GpuProcess> = Vec::new();
    // The newest entry point first; older drivers only have the v2 symbols.
    let compute = d
        .running_compute_processes()
        .or_else(|_| d.running_compute_processes_v2())
        .unwrap_or_default();
    let graphics = d
        .running_graphics_processes()
        .or_else(|_| d.running_graphics_processes_v2())
        .unwrap_or_default();
    for p in compute.into_iter().chain(graphics) {
        let used = match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        };
        match processes.iter_mut().find(|x| x.pid == p.pid) {
            Some(x) => x.used_memory_bytes = x.used_memory_bytes.max(used),
            None => processes.push(GpuProcess {
                pid: p.pid,
                used_memory_bytes: used,
                name: None,
                server: None,
            }),
        }
    }
    GpuDevice {
        index,
        name: d.name().ok(),
        uuid: d.uuid().ok(),
        memory_used_bytes: mem.as_ref().map(|m| m.used),
        memory_total_bytes: mem.as_ref().map(|m| m.total),
        utilization_gpu_pct: util.as_ref().map(|u| u.gpu),
        utilization_memory_pct: util.as_ref().map(|u| u.memory),
        temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
        power_draw_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        power_limit_w: d
            .enforced_power_limit()
            .ok()
            .map(|mw| f64::from(mw) / 1000.0),
        sm_clock_mhz: d.clock_info(Clock::SM).ok(),
        fan_pct: d.fan_speed(0).ok(),
        processes,
        error: None,
    }
}

#[async_trait]
impl GpuSource for NvmlSource {
    fn name(&self) -> &str {
        "local"
    }

    /// NVML calls (and the first one's library load) block: they run on a blocking thread,
    /// never on an async worker.
    async fn sample(&mut self) -> GpuSample {
        let mut me = std::mem::take(self);
        match tokio::task::spawn_blocking(move || {
            let s = me.read();
            (me, s)
        })
        .await
        {
            Ok((me, s)) => {
                *self = me;
                s
            }
            Err(e) => GpuSample::empty("local", GpuStatus::Unreachable(format!("NVML: {e}"))),
        }
    }
}
