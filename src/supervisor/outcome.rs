//! What a server operation ends in, for the local and the cluster paths alike.
use super::preflight::PreflightError;
use super::status::ServerStatus;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("no server profile `{name}` (profiles: {known})")]
    UnknownServer { name: String, known: String },
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("server `{}` is already running ({})", .0.name, .0.state)]
    AlreadyRunning(Box<ServerStatus>),
    #[error("server `{name}`: {message}")]
    Failed { name: String, message: String },
}

/// What was started: the run, and where it stood when its monitor first reported.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: String,
    pub status: ServerStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    Ready(ServerStatus),
    /// It ended (or was stopped) before it was ready.
    Ended(ServerStatus),
    TimedOut(ServerStatus),
}
