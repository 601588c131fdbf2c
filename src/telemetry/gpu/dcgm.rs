//! A remote node's GPUs from its DCGM exporter (`http://node:9400/metrics`), through the same
//! interface as NVML, so one console can watch several machines.
use super::{GpuDevice, GpuSample, GpuSource, GpuStatus};
use crate::telemetry::prometheus::{Page, Sample};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

const MIB: f64 = 1024.0 * 1024.0;

/// DCGM exports a field it has no value for as a sentinel near `i64::MAX`
/// (`DCGM_INT64_BLANK` and friends); such a value means "missing".
fn real(v: f64) -> Option<f64> {
    (v.is_finite() && v.abs() < 9.0e18).then_some(v)
}

/// Builds devices from an exporter page, one per `gpu` label (the UUID when it is absent).
pub fn parse(source: &str, text: &str) -> GpuSample {
    let page = Page::parse(text);
    let mut by_gpu: BTreeMap<(u32, String), Vec<&Sample>> = BTreeMap::new();
    for s in page
        .samples
        .iter()
        .filter(|s| s.name.starts_with("DCGM_FI_"))
    {
        let index = s
            .label("gpu")
            .and_then(|g| g.parse().ok())
            .unwrap_or(u32::MAX);
        let uuid = s.label("UUID").unwrap_or("").to_string();
        by_gpu.entry((index, uuid)).or_default().push(s);
    }
    if by_gpu.is_empty() {
        let status = if page.samples.is_empty() {
            GpuStatus::Unreachable("the page has no metrics".into())
        } else {
            GpuStatus::NoDevices
        };
        return GpuSample::empty(source, status);
    }
    let mut driver = None;
    let devices = by_gpu
        .into_iter()
        .enumerate()
        .map(|(i, ((index, uuid), samples))| {
            let get = |n: &str| {
                samples
                    .iter()
                    .find(|s| s.name == n)
                    .and_then(|s| real(s.value))
            };
            let first = samples[0];
            driver = driver
                .clone()
                .or_else(|| first.label("DCGM_FI_DRIVER_VERSION").map(String::from));
            let used = get("DCGM_FI_DEV_FB_USED");
            let free = get("DCGM_FI_DEV_FB_FREE");
            let reserved = get("DCGM_FI_DEV_FB_RESERVED").unwrap_or(0.0);
            let total = get("DCGM_FI_DEV_FB_TOTAL").or(match (used, free) {
                (Some(u), Some(f)) => Some(u + f + reserved),
                _ => None,
            });
            // Newer setups export the profiling ratio instead of the classic percentage.
            let util = get("DCGM_FI_DEV_GPU_UTIL")
                .or_else(|| get("DCGM_FI_PROF_GR_ENGINE_ACTIVE").map(|r| r * 100.0));
            let pct = |v: Option<f64>| v.map(|x| x.round().clamp(0.0, 100.0) as u32);
            GpuDevice {
                index: if index == u32::MAX { i as u32 } else { index },
                name: first.label("modelName").map(String::from),
                uuid: (!uuid.is_empty()).then_some(uuid),
                memory_used_bytes: used.map(|m| (m * MIB) as u64),
                memory_total_bytes: total.map(|m| (m * MIB) as u64),
                utilization_gpu_pct: pct(util),
                utilization_memory_pct: pct(get("DCGM_FI_DEV_MEM_COPY_UTIL")),
                temperature_c: get("DCGM_FI_DEV_GPU_TEMP").map(|t| t.max(0.0) as u32),
                power_draw_w: get("DCGM_FI_DEV_POWER_USAGE"),
                power_limit_w: get("DCGM_FI_DEV_POWER_MGMT_LIMIT"),
                sm_clock_mhz: get("DCGM_FI_DEV_SM_CLOCK").map(|c| c.max(0.0) as u32),
                fan_pct: pct(get("DCGM_FI_DEV_FAN_SPEED")),
                processes: Vec::new(),
                error: None,
            }
        })
        .collect();
    GpuSample {
        source: source.to_string(),
        status: GpuStatus::Ok,
        driver_version: driver,
        devices,
    }
}

pub struct DcgmSource {
    name: String,
    url: String,
    client: reqwest::Client,
}

impl DcgmSource {
    pub fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.to_string(),
            url: url.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait]
impl GpuSource for DcgmSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn sample(&mut self) -> GpuSample {
        let resp = match self.client.get(&self.url).send().await {
            Ok(r) => r,
            Err(e) => {
                return GpuSample::empty(
                    &self.name,
                    GpuStatus::Unreachable(format!("{}: {e}", self.url)),
                )
            }
        };
        if !resp.status().is_success() {
            let s = resp.status().as_u16();
            return GpuSample::empty(
                &self.name,
                GpuStatus::Unreachable(format!("{}: HTTP {s}", self.url)),
            );
        }
        match crate::provider::body::read_capped(resp, crate::provider::body::MAX_PAGE_BYTES).await
        {
            Ok(b) => parse(&self.name, &String::from_utf8_lossy(&b)),
            Err(e) => GpuSample::empty(
                &self.name,
                GpuStatus::Unreachable(format!("{}: {}", self.url, e.message)),
            ),
        }
    }
}
