//! `anorag-tui gpu [--json] [--watch]`: this machine's GPUs and every configured DCGM exporter.
//! A machine without a GPU is a status, reported with exit code 0.
use crate::format;
use crate::supervisor::Supervisor;
use crate::telemetry::gpu::GpuSample;
use crate::telemetry::sampler;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct GpuArgs {
    /// JSON is `{"sources":[...]}`.
    #[command(flatten)]
    pub r: super::repeat::Repeat,
}

pub async fn run(explicit: Option<&Path>, a: GpuArgs) -> ExitCode {
    let cfg = Arc::new(or_exit!(super::config_or_exit(explicit)));
    let servers = crate::supervisor::running_servers_fn(Supervisor::from_env(cfg.clone()).ok());
    let mut sources = sampler::sources_from_config(&cfg, None);
    let mut n = 0u64;
    loop {
        let samples = sampler::read_all(&mut sources, &servers()).await;
        if a.r.json {
            println!("{}", serde_json::json!({ "sources": samples }));
        } else {
            if a.r.watch && n > 0 {
                println!();
            }
            print!("{}", render(&samples));
        }
        n += 1;
        if a.r.done(n) || !a.r.wait().await {
            return ExitCode::SUCCESS;
        }
    }
}

/// The human table for a set of readings.
pub fn render(samples: &[GpuSample]) -> String {
    let mut out = String::new();
    for s in samples {
        let driver = s
            .driver_version
            .as_ref()
            .map(|d| format!(" (driver {d})"))
            .unwrap_or_default();
        if !s.status.is_ok() {
            out.push_str(&format!("{}{driver}: {}\n", s.source, s.status.describe()));
            continue;
        }
        out.push_str(&format!(
            "{}{driver}: {} GPU(s)\n",
            s.source,
            s.devices.len()
        ));
        out.push_str(&format!(
            "  {:<3} {:<24} {:<17} {:>5} {:>5} {:>5} {:<15} {:>7} {:>4}\n",
            "GPU", "NAME", "MEMORY", "UTIL", "MEM%", "TEMP", "POWER", "SM MHZ", "FAN"
        ));
        for d in &s.devices {
            if let Some(e) = &d.error {
                out.push_str(&format!("  {:<3} {e}\n", d.index));
                continue;
            }
            let mem = match (d.memory_used_bytes, d.memory_total_bytes) {
                (Some(u), Some(t)) => format::bytes_of(u, t),
                (Some(u), None) => format::bytes(u),
                _ => "-".into(),
            };
            let power = match (d.power_draw_w, d.power_limit_w) {
                (Some(p), Some(l)) => format!("{p:.0}/{l:.0} W"),
                (Some(p), None) => format!("{p:.0} W"),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "  {:<3} {:<24} {:<17} {:>5} {:>5} {:>5} {:<15} {:>7} {:>4}\n",
                d.index,
                format::clip(d.name.as_deref().unwrap_or("-"), 24),
                mem,
                format::opt(d.utilization_gpu_pct, |v| format!("{v}%")),
                format::opt(d.utilization_memory_pct, |v| format!("{v}%")),
                format::opt(d.temperature_c, |v| format!("{v}C")),
                power,
                format::opt(d.sm_clock_mhz, |v| v.to_string()),
                format::opt(d.fan_pct, |v| format!("{v}%")),
            ));
            for p in &d.processes {
                let who = p
                    .server
                    .as_ref()
                    .map(|s| format!(" (server {s})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "        pid {:<8} {:<20} {}{who}\n",
                    p.pid,
                    format::clip(p.name.as_deref().unwrap_or("?"), 20),
                    format::opt(p.used_memory_bytes, format::bytes)
                ));
            }
        }
    }
    out
}
