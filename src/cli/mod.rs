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
    let source = config::find(explicit);
    let cfg = config::load(&source).map_err(|e| e.to_string())?;
    // Remapped keys that clash with the console's own bindings: the key map knows them,
    // and the error points at the line that remaps.
    if let Err(e) = crate::tui::keymap::KeyMap::with_overrides(&cfg.tui.keys) {
        let at = config::position(&source, &["tui", "keys", &e.name]);
        return Err(format!("{at}: {e}"));
    }
    Ok((cfg, source))
}
