//! `anorag-tui status [--json] [--watch]`: servers, routes (with vLLM's own numbers), GPUs and
//! the host in one view. `--watch` runs the same sampling engines as the console.
use crate::cluster::ClusterView;
use crate::supervisor::engine::{self, SupEvent};
use crate::supervisor::{ServerStatus, Supervisor};
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
        let mut sources = sampler::sources_from_config(&cfg, None);
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
        let (servers, clusters) = match &sup {
            Some(s) => {
                let views = s.cluster_jobs().views(&Default::default()).await;
                let remote = s.cluster_jobs().statuses_in(&views).await;
                (merge(s, remote), views.into_values().collect())
            }
            None => (Vec::new(), Vec::new()),
        };
        print(&a, &servers, &clusters, &table, &gpu, &host);
        return ExitCode::SUCCESS;
    }

    let sampler::Live {
        gpu_rx,
        mut host_rx,
        routes_rx: route_rx,
        probe_tx: _probe,
    } = sampler::spawn_live(
        &cfg,
        &router,
        servers,
        sup.as_ref().map(crate::supervisor::clusters_fn),
        sample_every,
        probe_cfg,
    );
    // A server's state change (a crash, say) prints a view at once, not at the next interval:
    // the supervisor engine hears of it through file notifications.
    let (sup_tx, mut sup_rx) = tokio::sync::mpsc::channel(256);
    let engine = sup.clone().map(|s| engine::spawn(s, sup_tx));
    let mut seen = std::collections::HashMap::new();
    // Cluster servers and clusters as the engine last reported them.
    let mut remote: std::collections::BTreeMap<String, ServerStatus> = Default::default();
    let mut views: std::collections::BTreeMap<String, ClusterView> = Default::default();
    let mut n = 0;
    loop {
        tokio::select! {
            r = host_rx.changed() => if r.is_err() { return ExitCode::SUCCESS },
            Some(ev) = sup_rx.recv() => {
                if let Some(e) = &engine {
                    e.taken(&ev);
                }
                match ev {
                    // A cluster that became unreachable (or came back) is news at once.
                    SupEvent::Cluster(v) => {
                        let was = views.insert(v.cluster.clone(), *v.clone());
                        if was.is_none_or(|w| w.error.is_some() == v.error.is_some()) {
                            continue;
                        }
                    }
                    // A server's first report is what the views show already; a new state is news.
                    SupEvent::Status(st) => {
                        if st.cluster.is_some() {
                            remote.insert(st.name.clone(), (*st).clone());
                        }
                        if seen.insert(st.name.clone(), st.state).is_none_or(|was| was == st.state) {
                            continue;
                        }
                    }
                    _ => continue,
                }
            }
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
        let table = route_rx.borrow().clone();
        let gpu = gpu_rx.borrow().clone();
        let host = host_rx.borrow().clone();
        let servers = sup
            .as_ref()
            .map(|s| merge(s, remote.values().cloned().collect()))
            .unwrap_or_default();
        let clusters: Vec<ClusterView> = views.values().cloned().collect();
        print(&a, &servers, &clusters, &table, &gpu, &host);
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            return ExitCode::SUCCESS;
        }
    }
}

/// Local servers from the state directory with cluster servers as last read, in the config's
/// order.
fn merge(sup: &Supervisor, mut remote: Vec<ServerStatus>) -> Vec<ServerStatus> {
    let mut out = Vec::new();
    for n in sup.names() {
        match remote.iter().position(|s| s.name == n) {
            Some(i) => out.push(remote.remove(i)),
            None if sup.is_cluster(&n) => {}
            None => out.push(sup.status(&n)),
        }
    }
    out
}

fn print(
    a: &StatusArgs,
    servers: &[ServerStatus],
    clusters: &[ClusterView],
    table: &RouteTable,
    gpu: &GpuView,
    host: &HostView,
) {
    if a.json {
        let v = serde_json::json!({
            "clusters": clusters,
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
    for c in clusters {
        match &c.error {
            Some(e) => println!(
                "CLUSTER {} ({}): UNREACHABLE: {e}; last known state from {}",
                c.cluster,
                c.address,
                c.read_at
                    .map(crate::time::rfc3339)
                    .unwrap_or_else(|| "never (not read yet)".into())
            ),
            None => println!(
                "CLUSTER {} ({}): Ray {} · {} of {} nodes alive · {} jobs",
                c.cluster,
                c.address,
                c.version.as_deref().unwrap_or("?"),
                c.nodes.iter().filter(|n| n.alive).count(),
                c.nodes.len(),
                c.jobs.len()
            ),
        }
    }
    println!("\nSERVERS");
    super::server::print_table(servers);
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
