//! Headless subcommands: the same engines as the console, for scripts and CI.
pub mod bench;
pub mod chat;
pub mod config_check;
pub mod gpu;
pub mod routes;
pub mod server;
pub mod sim;
pub mod status;

use crate::config::{self, Config, Source};
use std::path::Path;

/// Our own diagnostics go to stderr only when asked for (`RUST_LOG`), never mixed into answers.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Finds and loads the configuration; the error text is ready to print.
pub fn load_config(explicit: Option<&Path>) -> Result<(Config, Source), String> {
    config::find_and_load(explicit)
}
