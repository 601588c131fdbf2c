//! Server lifecycle: launch profiles become server processes that are started, watched until
//! ready, followed in their logs and stopped with nothing left behind, from any shell or the
//! console (DESIGN.md §5).
pub mod control;
pub mod engine;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod preflight;
pub mod procfs;
pub mod record;
pub mod statedir;

pub use control::{ControlError, ServerStatus, Started, Supervisor, WaitOutcome};
pub use record::{Record, State};
pub use statedir::StateDir;
