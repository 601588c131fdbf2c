//! `anorag-tui gateway`: the gateway in the foreground, on this config's routes. A changed
//! config file (a notification, or SIGHUP) is checked and applied to new requests; an
//! invalid one is refused with FILE:LINE:COL and the old one stays. SIGTERM or Ctrl-C drains.
use crate::config::{self, Config, Source};
use crate::gateway::{self, Live, Settings};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// HOST:PORT to listen on (default: `gateway.listen`, else 127.0.0.1:8090). An address
    /// other machines can reach needs client keys (`gateway.keys_env`).
    #[arg(long)]
    pub listen: Option<String>,
}

async fn live(cfg: &Config) -> Result<Live, String> {
    let (cfg, notes) = crate::supervisor::cluster_jobs::resolve_routes(cfg).await;
    for n in notes {
        eprintln!("[gateway] {n}");
    }
    let router = crate::provider::factory::build(&cfg)
        .await
        .map_err(|e| e.to_string())?;
    Live::new(&cfg, router)
}

pub async fn run(explicit: Option<&Path>, a: GatewayArgs) -> ExitCode {
    let (cfg, source) = match config::find_and_load(explicit) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_config(&cfg, a.listen.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let live = match live(&cfg).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let names = live.names.names().join(", ");
    let keys = !live.keys.is_empty();
    let running = match gateway::run(settings, live).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "[gateway] listening on http://{} (OpenAI: http://{0}/v1, Ollama: http://{0}); config {source}; client keys {}; models: {names}",
        running.addr,
        if keys { "required" } else { "off (loopback)" }
    );
    let shared = running.shared.clone();
    let reload = tokio::spawn(watch_config(source, shared, cfg.gateway.clone()));
    super::until_terminated().await;
    reload.abort();
    running.shutdown().await;
    eprintln!("[gateway] stopped");
    ExitCode::SUCCESS
}

/// Reloads on SIGHUP and when the file changes (notifications on its folder, so that an
/// editor's write-and-rename is seen too).
async fn watch_config(source: Source, shared: Arc<gateway::Shared>, first: config::GatewayBlock) {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let _watcher = match &source {
        Source::File(p) => {
            let file = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = file.file_name().map(|n| n.to_os_string());
            let tx = tx.clone();
            notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                if let Ok(ev) = ev {
                    if ev.kind.is_access() {
                        return;
                    }
                    if ev
                        .paths
                        .iter()
                        .any(|q| q.file_name().map(|n| n.to_os_string()) == name)
                    {
                        let _ = tx.try_send(());
                    }
                }
            })
            .ok()
            .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).ok().map(|_| w))
        }
        Source::BuiltIn => None,
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let why = tokio::select! {
            Some(()) = rx.recv() => "the file changed",
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
        };
        // An editor writes in steps: let it finish, and take the burst as one change.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
        reload(&source, &shared, &first, why).await;
    }
}

async fn reload(
    source: &Source,
    shared: &gateway::Shared,
    first: &config::GatewayBlock,
    why: &str,
) {
    let cfg = match config::load(source) {
        Ok(c) => c,
        Err(errors) => {
            shared.notice(format!(
                "config reload ({why}) refused; the running config stays:\n{errors}"
            ));
            return;
        }
    };
    match live(&cfg).await {
        Ok(l) => {
            let n = l.names.exposed().len();
            shared.replace(l);
            let mut msg = format!("config reloaded ({why}) from {source}: {n} route(s) exposed; requests in flight finish on the old one");
            let g = &cfg.gateway;
            if g.listen != first.listen
                || g.max_body_bytes != first.max_body_bytes
                || g.max_in_flight != first.max_in_flight
                || g.max_queue != first.max_queue
                || g.client_timeout_ms != first.client_timeout_ms
                || g.queue_timeout_ms != first.queue_timeout_ms
                || g.drain_timeout_s != first.drain_timeout_s
            {
                msg.push_str(" (gateway.listen and the limits take effect on a restart)");
            }
            shared.notice(msg);
        }
        Err(e) => shared.notice(format!(
            "config reload ({why}) refused; the running config stays: {e}"
        )),
    }
}
