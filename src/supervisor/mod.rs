//! Server lifecycle: launch profiles become server processes that are started, watched until
//! ready, followed in their logs and stopped with nothing left behind, from any shell or the
//! console (DESIGN.md §5).
pub mod cluster_jobs;
pub mod cluster_spec;
pub mod cluster_watch;
pub mod control;
pub mod engine;
pub mod events;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod outcome;
pub mod preflight;
pub mod record;
pub mod statedir;
pub mod status;

pub use control::Supervisor;
pub use outcome::{ControlError, Started, WaitOutcome};
pub use record::{Record, State};
pub use statedir::StateDir;
pub use status::ServerStatus;

/// (name, main pid) of every running server, read from the shared state directory. It only
/// attributes GPU memory and CPU to servers, so a reading serves for 3 s: a server that just
/// started is attributed at most that late, and the samplers do not re-read every record
/// (and take every monitor's lock) each second.
pub fn running_servers_fn(sup: Option<Supervisor>) -> crate::telemetry::sampler::ServersFn {
    type Cached = Option<(std::time::Instant, Vec<(String, i32)>)>;
    let cache: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    std::sync::Arc::new(move || {
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, v)) = c.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(3) {
                return v.clone();
            }
        }
        let v: Vec<(String, i32)> = sup
            .as_ref()
            .map(|s| {
                s.statuses()
                    .into_iter()
                    .filter(|st| st.is_running())
                    .filter_map(|st| st.pid.map(|p| (st.name, p)))
                    .collect()
            })
            .unwrap_or_default();
        *c = Some((std::time::Instant::now(), v.clone()));
        v
    })
}
