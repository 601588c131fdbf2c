//! Server lifecycle: launch profiles become server processes that are started, watched until
//! ready, followed in their logs and stopped with nothing left behind, from any shell or the
//! console (DESIGN.md §5).
pub mod control;
pub mod engine;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod preflight;
pub mod record;
pub mod statedir;

pub use control::{ControlError, ServerStatus, Started, Supervisor, WaitOutcome};
pub use record::{Record, State};
pub use statedir::StateDir;

/// (name, main pid) of every running server, read from the shared state directory.
pub fn running_servers_fn(sup: Option<Supervisor>) -> crate::telemetry::sampler::ServersFn {
    std::sync::Arc::new(move || {
        sup.as_ref()
            .map(|s| {
                s.statuses()
                    .into_iter()
                    .filter(|st| st.is_running())
                    .filter_map(|st| st.pid.map(|p| (st.name, p)))
                    .collect()
            })
            .unwrap_or_default()
    })
}
