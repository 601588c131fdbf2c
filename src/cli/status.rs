//! `anorag-tui status [--json] [--watch]`: servers, routes (with vLLM's own numbers), GPUs and
//! the host in one view. `--watch` runs the same sampling engines as the console.
use crate::supervisor::engine::{self, SupEvent};
use crate::supervisor::Supervisor;
use crate::telemetry::routes::{self, RouteTable};
use crate::telemetry::sampler::{self, GpuView, HostView};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    /// Keep sampling; print a new view every --interval seconds.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between views with --watch (also the GPU, host and probe interval).
    #[arg(long, value_parser = crate::input::seconds(0.1))]
    pub interval: Option<f64>,
    /// With --watch: stop after this many views.
    #[arg(long)]
    pub count: Option<u64>,
}

pub async fn run(explicit: Option<&Path>, a: StatusArgs) -> ExitCode {
    let cfg = Arc::new(or_exit!(super::config_or_exit(explicit)));
    let sup = Supervisor::from_env(cfg.clone()).ok();
    let router = Arc::new(or_exit!(super::router_or_exit(&cfg).await));
    let servers = crate::supervisor::running_servers_fn(sup.clone());
    let (sample_every, probe_cfg) = sampler::intervals(&cfg, a.interval.map(|i| i.max(0.1)));

    if !a.watch {
        let mut sources = sampler::sources_from_config(&cfg);
        let running = servers();
        let (table, gpu) = tokio::join!(
            routes::probe_all(&router, probe_cfg.timeout),
            sampler::read_all(&mut sources, &running)
        );
        let mut host = crate::telemetry::host::HostSampler::new();
        // CPU use is a difference of two readings.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let host = HostView {
            sample: host.sample(&running),
            ..HostView::default()
        };
        let gpu = GpuView {
            samples: gpu,
            ..GpuView::default()
        };
        print(&a, sup.as_ref(), &table, &gpu, &host);
        return ExitCode::SUCCESS;
    }

    let sampler::Live {
        gpu_rx,
        mut host_rx,
        routes_rx: route_rx,
        probe_tx: _probe,
    } = sampler::spawn_live(&cfg, &router, servers, sample_every, probe_cfg);
    // A server's state change (a crash, say) prints a view at once, not at the next interval:
    // the supervisor engine hears of it through file notifications.
    let (sup_tx, mut sup_rx) = tokio::sync::mpsc::channel(256);
    let engine = sup.clone().map(|s| engine::spawn(s, sup_tx));
    let mut seen = std::collections::HashMap::new();
    let mut n = 0;
    loop {
        tokio::select! {
            r = host_rx.changed() => if r.is_err() { return ExitCode::SUCCESS },
            Some(ev) = sup_rx.recv() => {
                if let Some(e) = &engine {
                    e.taken(&ev);
                }
                // A server's first report is what the views show already; a new state is news.
                let SupEvent::Status(st) = ev else { continue };
                if seen.insert(st.name.clone(), st.state).is_none_or(|was| was == st.state) {
                    continue;
                }
            }
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
        let table = route_rx.borrow().clone();
        let gpu = gpu_rx.borrow().clone();
        let host = host_rx.borrow().clone();
        print(&a, sup.as_ref(), &table, &gpu, &host);
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            return ExitCode::SUCCESS;
        }
    }
}

fn print(
    a: &StatusArgs,
    sup: Option<&Supervisor>,
    table: &RouteTable,
    gpu: &GpuView,
    host: &HostView,
) {
    let servers = sup.map(Supervisor::statuses).unwrap_or_default();
    if a.json {
        let v = serde_json::json!({
            "servers": servers,
            "routes": table.routes,
            "gpu": gpu.samples,
            "host": host.sample,
        });
        println!("{v}");
        return;
    }
    let h = &host.sample;
    println!(
        "HOST  cpu {:.0}% of {} cores · memory {} · load {:.2}",
        h.cpu_pct,
        h.cores,
        crate::format::bytes_of(h.memory_used_bytes, h.memory_total_bytes),
        h.load_1m
    );
    println!("\nSERVERS");
    super::server::print_table(&servers);
    for s in &h.servers {
        println!(
            "  {}: {} process(es), cpu {:.0}%, rss {}",
            s.name,
            s.processes,
            s.cpu_pct,
            crate::format::bytes(s.rss_bytes)
        );
    }
    println!("\nROUTES");
    print!("{}", super::routes::render(&table.routes));
    println!("\nGPU");
    print!("{}", super::gpu::render(&gpu.samples));
    if a.watch {
        println!("{}", "-".repeat(60));
    }
}
