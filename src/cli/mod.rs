//! Headless subcommands: the same engines as the console, for scripts and CI.

/// The value of a `Result<T, ExitCode>`, or return the exit code (the error is printed).
macro_rules! or_exit {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
pub mod adhoc;
pub mod adhoc_server;
pub mod bench;
pub mod bench_args;
pub mod bench_plans;
pub mod bench_run;
pub mod chat;
pub mod cluster;
pub mod config_check;
pub mod find_max;
pub mod gateway;
pub mod gpu;
pub mod models;
pub mod repeat;
pub mod report;
pub mod routes;
pub mod server;
pub mod sim;
pub mod status;
pub mod traffic;

use crate::config::{self, Config, Source};
use crate::provider::{factory, Router};
use std::path::Path;
use std::process::ExitCode;

/// Our own diagnostics go to stderr only when asked for (`RUST_LOG`), never mixed into answers.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Returns on SIGTERM or Ctrl-C: how a foreground server (`sim`, `gateway`) is told to stop.
pub async fn until_terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Finds and loads the configuration; the error text is ready to print.
pub fn load_config(explicit: Option<&Path>) -> Result<(Config, Source), String> {
    config::find_and_load(explicit)
}

/// The configuration, or exit code 2 (the file is at fault) after printing why.
pub fn config_or_exit(explicit: Option<&Path>) -> Result<Config, ExitCode> {
    load_config(explicit).map(|(c, _)| c).map_err(|msg| {
        eprintln!("{msg}");
        ExitCode::from(2)
    })
}

/// The router the configuration describes, or exit code 1 after printing why.
pub async fn router_or_exit(cfg: &Config) -> Result<Router, ExitCode> {
    // A cluster server's route leads to the node Ray placed it on.
    let (cfg, notes) = crate::supervisor::cluster_jobs::resolve_routes(cfg).await;
    for n in notes {
        eprintln!("[anorag] {n}");
    }
    factory::build(&cfg).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}
