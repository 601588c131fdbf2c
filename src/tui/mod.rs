//! The console: six panes over the engines, k9s-style keys. The only place that uses ratatui
//! and crossterm.
pub mod action;
pub mod app;
pub mod bench_state;
pub mod keymap;
pub mod models_state;
pub mod panics;
pub mod runtime;
pub mod servers_state;
pub mod terminal;
pub mod traffic_state;
pub mod update;
pub mod view;

use crate::config::Config;
use crate::provider::factory;
use crate::supervisor::engine;
use crate::supervisor::Supervisor;
use crate::telemetry::sampler;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The variable holding a client key for gateways with `keys_env` (as `traffic --key-env`).
pub const TRAFFIC_KEY_ENV: &str = "ANORAG_GATEWAY_KEY";
/// New requests a second the Traffic list follows step by step, per gateway.
pub const TRAFFIC_ROWS_PER_S: u32 = 50;

/// Our own diagnostics go to a file: the screen belongs to the console.
fn log_to_file(dir: &Path) -> Option<std::path::PathBuf> {
    crate::supervisor::statedir::ensure_private_dir(dir).ok()?;
    let path = dir.join("anorag-tui.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(path)
}

/// Builds the engines and the state; shared by the real console and its tests.
pub async fn start(
    cfg: Arc<Config>,
    sup: Supervisor,
    read_only: bool,
) -> Result<(app::App, runtime::Engines), String> {
    let keys = keymap::KeyMap::with_overrides(&cfg.tui.keys).map_err(|e| e.to_string())?;
    // A cluster server's route leads to the node Ray placed it on (as placed at start).
    let (resolved, _) = crate::supervisor::cluster_jobs::resolve_routes(&cfg).await;
    let router = Arc::new(factory::build(&resolved).await.map_err(|e| e.to_string())?);
    let (sup_tx, sup_rx) = mpsc::channel(1024);
    let (panic_tx, panic_rx) = mpsc::unbounded_channel();
    let sup_handle = engine::spawn(sup.clone(), sup_tx);
    let servers = crate::supervisor::running_servers_fn(Some(sup.clone()));
    let (sample_every, probe_cfg) = sampler::intervals(&cfg, None);
    // The engine reads the records and the clusters; the samplers take its readings.
    let clusters = Some(crate::supervisor::clusters_fn(&sup));
    let live = sampler::spawn_live(&cfg, &router, servers, clusters, sample_every, probe_cfg);
    let names = router.route_names();
    // The gateways this config names, followed for the Traffic pane: every request's steps,
    // up to a few dozen new ones a second (fallbacks and failures always), and each second's
    // figures.
    let traffic = crate::traffic::watcher::spawn(
        crate::traffic::gateways_of(&cfg),
        crate::secret::Secret::from_env(TRAFFIC_KEY_ENV),
        crate::traffic::Want {
            seconds_only: false,
            rows_per_s: Some(TRAFFIC_ROWS_PER_S),
        },
        Duration::from_millis(250),
    );
    let mut app = app::App::new(
        keys,
        names,
        router.default_route(),
        read_only,
        cfg.tui.log_lines.unwrap_or(5000),
    );
    app.routes.table = live.routes_rx.borrow().clone();
    app.models = models_pane(&cfg);
    Ok((
        app,
        runtime::Engines {
            router,
            sup: sup_handle,
            sup_rx,
            gpu_rx: live.gpu_rx,
            host_rx: live.host_rx,
            routes_rx: live.routes_rx,
            probe_tx: live.probe_tx,
            traffic,
            panic_tx,
            panic_rx,
            running: {
                let seen = sup.clone();
                Arc::new(move || {
                    crate::supervisor::status::running_pids(&seen.statuses())
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect()
                })
            },
            config: cfg.clone(),
        },
    ))
}

/// The Models pane's defaults from the config: the `vllm` its profiles run, the ports they
/// hold, and whether a profile can be saved beside it.
fn models_pane(cfg: &Config) -> models_state::ModelsPane {
    models_state::ModelsPane {
        executable: cfg
            .servers
            .values()
            .find_map(|p| {
                p.executable
                    .clone()
                    .filter(|_| p.kind == crate::config::ServerKind::Vllm)
            })
            .unwrap_or_else(|| "vllm".into()),
        taken_ports: cfg.servers.values().map(|p| p.port).collect(),
        can_save: !cfg.file.starts_with('<'),
        routes: cfg
            .routes()
            .into_iter()
            .filter(|r| r.kind == crate::provider::ProviderKind::VllmOpenai)
            .filter_map(|r| {
                let u = url::Url::parse(r.urls.first()?).ok()?;
                let local = matches!(
                    u.host_str(),
                    Some("127.0.0.1" | "localhost" | "0.0.0.0" | "::1")
                );
                Some(models_state::LocalRoute {
                    name: r.name,
                    port: u.port_or_known_default().filter(|_| local)?,
                    model: r.model,
                })
            })
            .collect(),
        cpu_kv: std::env::var("VLLM_CPU_KVCACHE_SPACE")
            .ok()
            .and_then(|v| crate::models::plan::cpu_kv_space(&v)),
        ..Default::default()
    }
}

pub async fn run(explicit: Option<&Path>, read_only: bool, no_autostart: bool) -> ExitCode {
    let (cfg, source) = match crate::config::find_and_load(explicit) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("error: the console needs a terminal; for scripts use the headless commands (anorag-tui --help)");
        return ExitCode::from(2);
    }
    let cfg = Arc::new(cfg);
    let sup = match Supervisor::from_env(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = log_to_file(sup.dir().root());
    tracing::info!(config = %source, read_only, "console starting");
    let (mut app, engines) = match start(cfg.clone(), sup.clone(), read_only).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    app.no_autostart = no_autostart;
    app.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    app.config_name = match &source {
        crate::config::Source::File(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        crate::config::Source::BuiltIn => "built-in config".into(),
    };
    let frame = Duration::from_millis(cfg.tui.frame_ms.unwrap_or(33).clamp(8, 1000));
    let (guard, mut term) = match terminal::Guard::enter(engines.panic_tx.clone()) {
        Ok(x) => x,
        Err(e) => {
            terminal::restore();
            eprintln!("error: cannot set up the terminal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime::run(
        &mut term,
        &mut app,
        engines,
        runtime::terminal_events(),
        frame,
    )
    .await;
    let stop = match result {
        Ok(stop) => stop,
        Err(e) => {
            drop(guard);
            eprintln!("error: the terminal failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Stopping can take a while (SIGTERM, then SIGKILL after the grace period): say so.
    if !stop.is_empty() {
        let _ = term.draw(|f| {
            let area = view::centered(f.area(), 60, 3);
            f.render_widget(ratatui::widgets::Clear, area);
            f.render_widget(
                ratatui::widgets::Paragraph::new(format!("stopping {} …", stop.join(", ")))
                    .block(ratatui::widgets::Block::bordered()),
                area,
            );
        });
    }
    let mut outcome = Vec::new();
    for name in &stop {
        match sup.stop(name, None).await {
            Ok(st) => outcome.push(format!(
                "stopped {name} ({})",
                st.exit_text().unwrap_or_else(|| st.state.to_string())
            )),
            Err(e) => outcome.push(format!("could not stop {name}: {e}")),
        }
    }
    drop(guard);
    for line in outcome {
        eprintln!("{line}");
    }
    let left: Vec<String> = sup
        .statuses()
        .into_iter()
        .filter(|s| s.is_running())
        .map(|s| s.name)
        .collect();
    if !left.is_empty() {
        eprintln!(
            "still running: {} (anorag-tui server status; anorag-tui server stop NAME)",
            left.join(", ")
        );
    }
    if let Some(p) = log {
        tracing::info!("console closed; log at {}", p.display());
    }
    ExitCode::SUCCESS
}
