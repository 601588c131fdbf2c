//! What the supervisor engine tells its consumer (status changes, log lines, cluster
//! readings, results), shared by its local and cluster halves.
use super::status::ServerStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Restart,
}

impl Op {
    pub fn verb(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SupEvent {
    /// A server's status changed (or is reported for the first time).
    Status(Box<ServerStatus>),
    /// New lines of a server's log. `lost` counts lines that did not fit in the channel.
    Logs {
        name: String,
        lines: Vec<String>,
        lost: u64,
    },
    /// A new reading of a cluster (nodes and jobs, or why it could not be read).
    Cluster(Box<crate::cluster::ClusterView>),
    /// An operation finished: `Ok(summary)` or `Err(reason)`.
    Done {
        name: String,
        op: Op,
        result: Result<String, String>,
    },
}

/// Most bytes of log lines waiting in the channel: a stalled consumer costs at most this
/// much memory; lines past it are counted as lost.
pub const QUEUED_LOG_BYTES: usize = 16 << 20;

/// A change worth telling the UI (uptime ticking is not: the UI computes it).
pub fn differs(a: &ServerStatus, b: &ServerStatus) -> bool {
    (
        a.state,
        a.pid,
        a.exit_code,
        a.signal,
        a.restarts,
        &a.message,
        a.ready_after_s,
        &a.run_id,
        &a.node,
    ) != (
        b.state,
        b.pid,
        b.exit_code,
        b.signal,
        b.restarts,
        &b.message,
        b.ready_after_s,
        &b.run_id,
        &b.node,
    )
}
