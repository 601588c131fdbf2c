//! What a cluster engine reports, in our own terms: nodes with their CPUs, memory and GPUs
//! (totals and in use), and jobs with their status. Ray's JSON is read into these by
//! `ray::parse`; a later Kubernetes engine fills the same types.
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeGpu {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub utilization_pct: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_c: Option<u32>,
    pub power_w: Option<f64>,
    /// Processes holding memory on it: (pid, bytes).
    pub processes: Vec<(u32, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterNode {
    pub id: String,
    /// The address the node reports (its IP).
    pub address: String,
    pub hostname: Option<String>,
    pub head: bool,
    pub alive: bool,
    pub cpus_total: f64,
    pub cpus_used: f64,
    pub gpus_total: f64,
    pub gpus_used: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    /// Custom resources (`node2`, accelerator types, ...): (total, in use).
    pub resources: BTreeMap<String, (f64, f64)>,
    pub gpus: Vec<NodeGpu>,
}

impl ClusterNode {
    /// A short name for tables: the custom resource that names the node (`node2`), else
    /// `head`, else the start of its id.
    pub fn label(&self) -> String {
        if let Some(r) = self
            .resources
            .keys()
            .find(|k| k.starts_with("node") && !k.contains(':'))
        {
            return r.clone();
        }
        if self.head {
            return "head".into();
        }
        self.id.chars().take(8).collect()
    }
}

/// Ray's job statuses, as its Jobs API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Stopped,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => JobStatus::Pending,
            "RUNNING" => JobStatus::Running,
            "STOPPED" => JobStatus::Stopped,
            "SUCCEEDED" => JobStatus::Succeeded,
            "FAILED" => JobStatus::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Stopped | JobStatus::Succeeded | JobStatus::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Stopped => "STOPPED",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterJob {
    /// The submission id: ours are `anorag-PROFILE-...`.
    pub id: String,
    pub status: JobStatus,
    pub message: Option<String>,
    pub entrypoint: String,
    /// The node the driver (the entrypoint) runs on.
    pub node_id: Option<String>,
    pub exit_code: Option<i32>,
    /// Unix milliseconds.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub metadata: BTreeMap<String, String>,
}

/// Job metadata keys that mark a job as ours, so any shell or console finds it again.
pub const META_PROFILE: &str = "anorag.profile";
pub const META_CONFIG: &str = "anorag.config";

impl ClusterJob {
    /// The launch profile this job runs, when we submitted it.
    pub fn profile(&self) -> Option<&str> {
        self.metadata.get(META_PROFILE).map(String::as_str)
    }
}

/// One reading of a cluster: its nodes and jobs, or why it could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterView {
    pub cluster: String,
    pub address: String,
    pub version: Option<String>,
    pub nodes: Vec<ClusterNode>,
    pub jobs: Vec<ClusterJob>,
    /// Why the last reading failed (the head unreachable, an HTTP error); the nodes and jobs
    /// are then the last ones known.
    pub error: Option<String>,
    /// Unix seconds of the last good reading.
    pub read_at: Option<f64>,
}
