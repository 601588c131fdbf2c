//! Server lifecycle: launch profiles become server processes that are started, watched until
//! ready, followed in their logs and stopped with nothing left behind, from any shell or the
//! console (DESIGN.md §5).
pub mod cluster_jobs;
pub mod cluster_spec;
pub mod cluster_watch;
pub mod control;
pub mod engine;
pub mod events;
pub mod explain;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod outcome;
pub mod preflight;
pub mod record;
pub mod seen;
pub mod soak_probe;
pub mod statedir;
pub mod status;

pub use control::Supervisor;
pub use outcome::{ControlError, Started, WaitOutcome};
pub use record::{Record, State};
pub use statedir::StateDir;
pub use status::ServerStatus;

/// (name, main pid) of every running server: as the supervisor engine last read them, else
/// (no engine runs, as in a headless `gpu`) read from the shared state directory. It only
/// attributes GPU memory and CPU to servers, so a reading of its own serves for 3 s: a server
/// that just started is attributed at most that late, and the samplers do not re-read every
/// record (and take every monitor's lock) each second.
pub fn running_servers_fn(sup: Option<Supervisor>) -> crate::telemetry::sampler::ServersFn {
    type Cached = Option<(std::time::Instant, Vec<(String, i32)>)>;
    let cache: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    std::sync::Arc::new(move || {
        let Some(s) = sup.as_ref() else {
            return Vec::new();
        };
        if let Some(v) = s.seen().running() {
            return v;
        }
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, v)) = c.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(3) {
                return v.clone();
            }
        }
        let v = status::running_pids(&s.statuses());
        *c = Some((std::time::Instant::now(), v.clone()));
        v
    })
}

/// Each cluster's latest reading by the supervisor engine's cluster watch, for the GPU
/// sampler's Ray nodes.
pub fn clusters_fn(sup: &Supervisor) -> crate::telemetry::gpu::ray::ClustersFn {
    let seen = sup.seen().clone();
    std::sync::Arc::new(move |name: &str| seen.cluster(name))
}
