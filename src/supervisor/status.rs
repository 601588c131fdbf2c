//! One server's status as every view shows it (`server status --json`, the Servers pane, the
//! engine's events), for local servers from their record and for cluster servers from their job.
use super::record::{Record, State};
use crate::procfs;
use crate::time::{rfc3339, unix_now};
use serde::Serialize;

/// One server as `server status --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub state: State,
    pub kind: String,
    pub pid: Option<i32>,
    pub pgid: Option<i32>,
    pub host: String,
    pub port: u16,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub uptime_s: Option<f64>,
    pub ready_after_s: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub log_path: String,
    pub route: Option<String>,
    pub model: Option<String>,
    /// Secrets redacted.
    pub argv: Vec<String>,
    pub restarts: u32,
    pub message: Option<String>,
    /// Why the last run ended before it was ready, in one line (a known vLLM start-up
    /// failure, else the log's last error line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Before the start, the fit estimate said it would not fit: the verdict, and the
    /// settings that would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_warning: Option<String>,
    /// Whether this server's profile is in the current config.
    pub configured: bool,
    pub autostart: bool,
    #[serde(skip)]
    pub started_unix: Option<f64>,
    #[serde(skip)]
    pub run_id: Option<String>,
    /// The cluster it runs on (`None`: this machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The cluster node its job runs on (`node2`, `head`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The cluster job's submission id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl ServerStatus {
    /// A name with nothing known about it (not a profile of this config).
    pub fn unknown(name: &str) -> Self {
        Self {
            name: name.to_string(),
            state: State::Stopped,
            kind: "?".into(),
            pid: None,
            pgid: None,
            host: String::new(),
            port: 0,
            started_at: None,
            uptime_s: None,
            ready_after_s: None,
            exit_code: None,
            signal: None,
            log_path: String::new(),
            route: None,
            model: None,
            argv: Vec::new(),
            restarts: 0,
            message: None,
            failure: None,
            fit_warning: None,
            configured: false,
            autostart: false,
            started_unix: None,
            run_id: None,
            cluster: None,
            node: None,
            job: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state.is_running()
    }

    /// "exit code 1" / "signal 9 (SIGKILL)".
    pub fn exit_text(&self) -> Option<String> {
        match (self.exit_code, self.signal) {
            (Some(c), _) => Some(format!("exit code {c}")),
            (None, Some(s)) => Some(format!("signal {s} ({})", procfs::signal_name(s))),
            _ => None,
        }
    }
}

pub(super) fn from_record(r: &Record) -> ServerStatus {
    let running = r.state.is_running();
    ServerStatus {
        name: r.name.clone(),
        state: r.state,
        kind: r.kind.clone(),
        pid: r.server.as_ref().map(|s| s.pid),
        pgid: r.pgid,
        host: r.host.clone(),
        port: r.port,
        started_at: r.started_at.map(rfc3339),
        uptime_s: r
            .started_at
            .filter(|_| running)
            .map(|s| (unix_now() - s).max(0.0)),
        ready_after_s: match (r.started_at, r.ready_at) {
            (Some(s), Some(rd)) => Some(rd - s),
            _ => None,
        },
        exit_code: r.exit_code,
        signal: r.signal,
        log_path: r.log_path.clone(),
        route: r.route.clone(),
        model: r.model.clone(),
        argv: r.argv.clone(),
        restarts: r.restarts,
        message: r.message.clone(),
        failure: r.failure.clone(),
        fit_warning: r.fit_warning.clone(),
        configured: false,
        autostart: false,
        started_unix: r.started_at,
        run_id: Some(r.run_id.clone()),
        cluster: None,
        node: None,
        job: None,
    }
}

/// (name, main pid) of the running servers among `statuses`: what GPU memory and CPU are
/// attributed by.
pub fn running_pids<'a>(
    statuses: impl IntoIterator<Item = &'a ServerStatus>,
) -> Vec<(String, i32)> {
    statuses
        .into_iter()
        .filter(|st| st.is_running())
        .filter_map(|st| st.pid.map(|p| (st.name.clone(), p)))
        .collect()
}
