//! Launch profiles with `cluster:` run as cluster jobs (DESIGN.md §9): the same argv as a
//! local launch, quoted for a shell, placed by the job's CPUs, GPUs and resources, and found
//! again from any shell by its metadata. The cluster keeps the state; this module keeps
//! nothing on this machine. The pure half (job spec, state mapping, pending reason) is here;
//! the calls are in `ClusterJobs`.
use super::control::{ControlError, ServerStatus, Started, WaitOutcome};
use super::launch::{self, LaunchSpec};
use super::record::State;
use crate::cluster::{
    ClusterJob, ClusterView, JobSpec, JobStatus, RayClient, META_CONFIG, META_PROFILE,
};
use crate::config::{ClusterConfig, Config, RestartPolicy, ServerProfile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Job metadata: the port the server listens on (the route's port on the node).
pub const META_PORT: &str = "anorag.port";
/// Set in every job's environment, so the job's processes can be found on a node.
pub const JOB_ENV: &str = "ANORAG_JOB";
/// How long a health probe of a cluster server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A running job whose route has not answered for this long since it started counts as
/// unhealthy rather than starting (vLLM loads a model in well under this on a GPU node).
pub const STARTUP_GRACE_S: f64 = 600.0;
/// Lines the restart wrapper writes to the job's log; counted as restarts.
pub const RESTART_MARK: &str = "[anorag] restarting";

/// GPUs the job's entrypoint holds: `gpus` (how many), else tensor x pipeline parallel size.
/// With vLLM's Ray executor, vLLM places its own GPU workers: the entrypoint holds none, or
/// they would wait for the GPUs the entrypoint keeps.
pub fn gpus_needed(p: &ServerProfile) -> f64 {
    if p.distributed_executor_backend.as_deref() == Some("ray") {
        return 0.0;
    }
    if let Some(g) = &p.gpus {
        return g.len() as f64;
    }
    match (p.tensor_parallel_size, p.pipeline_parallel_size) {
        (None, None) => 0.0,
        (t, pp) => f64::from(t.unwrap_or(1) * pp.unwrap_or(1)),
    }
}

/// Where the server listens on its node: the profile's host, else loopback when the cluster
/// pins loopback (every node is this machine), else every interface, so the route reaches it.
pub fn bind_host(p: &ServerProfile, c: &ClusterConfig) -> String {
    if let Some(h) = &p.host {
        return h.clone();
    }
    match c.host.as_deref() {
        Some(h) if is_loopback(h) => "127.0.0.1".into(),
        _ => "0.0.0.0".into(),
    }
}

fn is_loopback(h: &str) -> bool {
    h == "localhost" || h.starts_with("127.") || h == "::1" || h == "[::1]"
}

/// Where routes connect to a server of this cluster on `node_address`: the cluster's pinned
/// host, else a specific host the profile binds to, else the node's address.
pub fn connect_host(p: &ServerProfile, c: &ClusterConfig, node_address: Option<&str>) -> String {
    if let Some(h) = &c.host {
        return h.clone();
    }
    match p.host.as_deref() {
        Some(h) if !matches!(h, "0.0.0.0" | "::" | "[::]" | "") => h.to_string(),
        _ => node_address.unwrap_or("").to_string(),
    }
}

/// The local launch of the profile, as it runs on a node: bound per [`bind_host`], and with
/// no `CUDA_VISIBLE_DEVICES` of ours (Ray assigns the job's GPUs).
pub fn launch_on(
    name: &str,
    p: &ServerProfile,
    c: &ClusterConfig,
    cfg: &Config,
    exe: &Path,
) -> LaunchSpec {
    let mut on_node = p.clone();
    on_node.host = Some(bind_host(p, c));
    on_node.gpus = None;
    let mut spec = launch::build(name, &on_node, &cfg.base_dir, exe);
    launch::keep_env_values_out(&mut spec, &cfg.from_env);
    spec
}

/// Quotes one word for a POSIX shell.
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return w.to_string();
    }
    format!("'{}'", w.replace('\'', r"'\''"))
}

/// The job's shell command line. `${VAR}` values of `env:` are filled in by the node's shell
/// from the node's own environment (they may be secrets, so they are not in the job spec).
/// Without a restart policy the shell `exec`s the server, so the job's exit code is the
/// server's; with `restart: on-failure` a small loop restarts it under the same crash-loop
/// guard as a local monitor (at most `max_restarts` within `restart_window`, growing pauses).
pub fn entrypoint(spec: &LaunchSpec) -> String {
    let mut out = String::new();
    for (k, template) in &spec.env_templates {
        // Double quotes: the shell expands `${VAR}` and nothing else splits the value.
        let t = template
            .replace('\\', r"\\")
            .replace('"', "\\\"")
            .replace('`', "\\`");
        out.push_str(&format!("export {k}=\"{t}\"; "));
    }
    let argv: Vec<String> = spec.argv.iter().map(|a| shell_quote(a)).collect();
    let cmd = argv.join(" ");
    if spec.restart != RestartPolicy::OnFailure {
        out.push_str("exec ");
        out.push_str(&cmd);
        return out;
    }
    let window = spec.restart_window_s.clamp(1.0, 1e9) as u64;
    let max = spec.max_restarts;
    out.push_str(&format!(
        "crashes=''; while :; do {cmd}; rc=$?; [ $rc -eq 0 ] && exit 0; \
now=$(date +%s); keep=''; for t in $crashes; do [ $((now - t)) -lt {window} ] && keep=\"$keep $t\"; done; crashes=$keep; \
set -- $crashes; if [ $# -ge {max} ]; then echo \"[anorag] crash loop: $# restarts within {window} s; not restarting again (exit code $rc)\"; exit $rc; fi; \
crashes=\"$crashes $now\"; pause=$((1 << $#)); [ $pause -gt 32 ] && pause=32; \
echo \"{RESTART_MARK} in $pause s after exit code $rc ($(($# + 1))/{max} within {window} s)\"; sleep $pause; done"
    ));
    out
}

/// The job for profile `name` of config `config_id`, submitted at `now_ms`.
pub fn job_spec(
    name: &str,
    p: &ServerProfile,
    spec: &LaunchSpec,
    config_id: &str,
    now_ms: u64,
) -> JobSpec {
    let submission_id = format!("anorag-{name}-{now_ms:x}");
    let mut env: BTreeMap<String, String> = spec.env.iter().cloned().collect();
    env.insert(JOB_ENV.into(), submission_id.clone());
    let metadata = BTreeMap::from([
        (META_PROFILE.to_string(), name.to_string()),
        (META_CONFIG.to_string(), config_id.to_string()),
        (META_PORT.to_string(), spec.port.to_string()),
    ]);
    JobSpec {
        submission_id,
        entrypoint: entrypoint(spec),
        num_cpus: p.num_cpus.unwrap_or(1.0),
        num_gpus: gpus_needed(p),
        resources: p.resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        env,
        metadata,
    }
}

/// Our jobs for profile `name` of config `config_id`, newest first.
pub fn jobs_of<'a>(jobs: &'a [ClusterJob], name: &str, config_id: &str) -> Vec<&'a ClusterJob> {
    let mut v: Vec<&ClusterJob> = jobs
        .iter()
        .filter(|j| {
            j.profile() == Some(name)
                && j.metadata.get(META_CONFIG).map(String::as_str) == Some(config_id)
        })
        .collect();
    v.sort_by_key(|j| std::cmp::Reverse((j.start_ms.unwrap_or(u64::MAX), j.id.clone())));
    v
}

/// The job that is the server now: a live one if any, else the newest.
pub fn current<'a>(jobs: &'a [ClusterJob], name: &str, config_id: &str) -> Option<&'a ClusterJob> {
    let mine = jobs_of(jobs, name, config_id);
    mine.iter()
        .find(|j| !j.status.is_terminal())
        .or(mine.first())
        .copied()
}

/// Why a pending job waits: what it needs that no alive node has free.
pub fn pending_reason(spec: &JobSpec, view: &ClusterView) -> String {
    let alive: Vec<_> = view.nodes.iter().filter(|n| n.alive).collect();
    let mut wants = Vec::new();
    let free = |total: f64, used: f64| (total - used).max(0.0);
    if spec.num_gpus > 0.0 {
        let f: f64 = alive.iter().map(|n| free(n.gpus_total, n.gpus_used)).sum();
        if f < spec.num_gpus {
            wants.push(format!(
                "needs {} GPU{}, the cluster has {} free",
                num(spec.num_gpus),
                if spec.num_gpus == 1.0 { "" } else { "s" },
                num(f)
            ));
        }
    }
    let f: f64 = alive.iter().map(|n| free(n.cpus_total, n.cpus_used)).sum();
    if spec.num_cpus > f {
        wants.push(format!(
            "needs {} CPU{}, the cluster has {} free",
            num(spec.num_cpus),
            if spec.num_cpus == 1.0 { "" } else { "s" },
            num(f)
        ));
    }
    for (k, want) in &spec.resources {
        let have: Vec<(f64, f64)> = alive
            .iter()
            .filter_map(|n| n.resources.get(k).copied())
            .collect();
        if have.is_empty() {
            wants.push(format!(
                "needs `{k}: {}`, which no alive node has",
                num(*want)
            ));
        } else {
            let f: f64 = have.iter().map(|(t, u)| free(*t, *u)).sum();
            if f < *want {
                wants.push(format!("needs `{k}: {}`, {} free", num(*want), num(f)));
            }
        }
    }
    if wants.is_empty() {
        "pending: waiting for Ray to place it (its runtime environment, or resources just freed)"
            .into()
    } else {
        format!("pending: {}", wants.join("; "))
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A cluster profile's status from its job, the cluster's view and a health probe of its
/// route (`None` when not probed). `was_ready`: this job answered before (a watcher that
/// saw it can tell unhealthy from starting at once; otherwise the startup grace decides).
#[allow(clippy::too_many_arguments)]
pub fn status_of(
    name: &str,
    p: &ServerProfile,
    c: &ClusterConfig,
    spec: &LaunchSpec,
    job: Option<&ClusterJob>,
    view: &ClusterView,
    healthy: Option<bool>,
    was_ready: bool,
    now_ms: u64,
) -> ServerStatus {
    let node = job
        .and_then(|j| j.node_id.as_deref())
        .and_then(|id| view.nodes.iter().find(|n| n.id == id));
    let mut st = ServerStatus {
        name: name.to_string(),
        state: State::Stopped,
        kind: p.kind.as_str().to_string(),
        pid: None,
        pgid: None,
        host: connect_host(p, c, node.map(|n| n.address.as_str())),
        port: p.port,
        started_at: None,
        uptime_s: None,
        ready_after_s: None,
        exit_code: None,
        signal: None,
        log_path: String::new(),
        route: p.route.clone(),
        model: spec.model.clone(),
        argv: super::record::redact_argv(&spec.argv),
        restarts: 0,
        message: None,
        configured: true,
        autostart: p.autostart,
        started_unix: None,
        run_id: None,
        cluster: p.cluster.clone(),
        node: node.map(|n| n.label()),
        job: None,
    };
    let Some(j) = job else { return st };
    st.run_id = Some(j.id.clone());
    st.job = Some(j.id.clone());
    st.log_path = format!("ray job {}", j.id);
    st.started_unix = j.start_ms.map(|s| s as f64 / 1000.0);
    st.started_at = st.started_unix.map(crate::time::rfc3339);
    let running = !j.status.is_terminal();
    if running {
        st.uptime_s = j.start_ms.map(|s| now_ms.saturating_sub(s) as f64 / 1000.0);
    }
    // Ray's message, without the log tail it appends to a failure (the Logs pane has it).
    st.message = j
        .message
        .as_deref()
        .and_then(|m| m.lines().next())
        .map(|m| {
            m.trim_end_matches(':')
                .trim_end_matches(", last available logs (truncated to 20,000 chars)")
                .to_string()
        });
    match j.status {
        JobStatus::Pending => {
            st.state = State::Starting;
            st.message = Some(pending_reason(&job_spec(name, p, spec, "", 0), view));
        }
        JobStatus::Running => {
            st.state = match healthy {
                Some(true) => State::Ready,
                _ if was_ready => State::Unhealthy,
                _ if st.uptime_s.unwrap_or(0.0) > STARTUP_GRACE_S => State::Unhealthy,
                _ => State::Starting,
            };
            if st.state == State::Ready {
                st.message = None;
            } else if st.state == State::Starting {
                st.message = Some(format!(
                    "running on {}; waiting for http://{}:{}{} to answer",
                    st.node.clone().unwrap_or_else(|| "a node".into()),
                    st.host,
                    st.port,
                    health_path(spec)
                ));
            }
        }
        JobStatus::Stopped => st.state = State::Exited,
        JobStatus::Succeeded => {
            st.state = State::Exited;
            st.exit_code = Some(j.exit_code.unwrap_or(0));
        }
        JobStatus::Failed => {
            st.state = State::Crashed;
            match j.exit_code {
                // Ray gives a driver killed by a signal as its negative number.
                Some(c) if c < 0 => st.signal = Some(-c),
                c => st.exit_code = c,
            }
        }
    }
    st
}

/// The path part of the launch's health URL (`/health`).
fn health_path(spec: &LaunchSpec) -> &str {
    let after_scheme = spec.health_url.split_once("://").map_or("", |x| x.1);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// Cluster profiles of one config, against their clusters.
#[derive(Debug, Clone)]
pub struct ClusterJobs {
    config: Arc<Config>,
    exe: PathBuf,
    clients: BTreeMap<String, Result<RayClient, String>>,
    http: reqwest::Client,
}

impl ClusterJobs {
    pub fn new(config: Arc<Config>, exe: PathBuf) -> Self {
        let clients = config
            .clusters
            .iter()
            .map(|(n, c)| (n.clone(), RayClient::new(n, c)))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .connect_timeout(PROBE_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            config,
            exe,
            clients,
            http,
        }
    }

    fn failed(name: &str, message: impl Into<String>) -> ControlError {
        ControlError::Failed {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// The profile, its cluster's config and client; `None` for a local profile.
    fn parts(
        &self,
        name: &str,
    ) -> Option<(&ServerProfile, &ClusterConfig, Result<&RayClient, String>)> {
        let p = self.config.servers.get(name)?;
        let cname = p.cluster.as_ref()?;
        let c = self.config.clusters.get(cname)?;
        let client = match self.clients.get(cname) {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("unknown cluster `{cname}`")),
        };
        Some((p, c, client))
    }

    pub fn is_cluster(&self, name: &str) -> bool {
        self.parts(name).is_some()
    }

    /// The names of the config's cluster profiles.
    pub fn names(&self) -> Vec<String> {
        self.config
            .servers
            .iter()
            .filter(|(_, p)| p.cluster.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn launch_spec(&self, name: &str) -> Option<LaunchSpec> {
        let (p, c, _) = self.parts(name)?;
        Some(launch_on(name, p, c, &self.config, &self.exe))
    }

    async fn healthy(&self, st: &ServerStatus, spec: &LaunchSpec) -> bool {
        if st.host.is_empty() {
            return false;
        }
        let host = launch::connect_host(&st.host);
        let url = format!("http://{host}:{}{}", st.port, health_path(spec));
        matches!(self.http.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// The status of profile `name` from a reading of its cluster.
    pub async fn status_in(&self, name: &str, view: &ClusterView, was_ready: bool) -> ServerStatus {
        let Some((p, c, _)) = self.parts(name) else {
            return ServerStatus::unknown(name);
        };
        let spec = launch_on(name, p, c, &self.config, &self.exe);
        let job = current(&view.jobs, name, &self.config.file);
        let now = crate::time::unix_now_ms();
        let mut st = status_of(name, p, c, &spec, job, view, None, was_ready, now);
        if job.is_some_and(|j| j.status == JobStatus::Running) {
            let ok = self.healthy(&st, &spec).await;
            st = status_of(name, p, c, &spec, job, view, Some(ok), was_ready, now);
        }
        if let Some(e) = &view.error {
            // The last known state, and why it may be stale.
            st.message = Some(format!(
                "cluster unreachable: {e}{}",
                view.read_at
                    .map(|t| format!(" (last read {})", crate::time::rfc3339(t)))
                    .unwrap_or_else(|| " (never read)".into())
            ));
        }
        st
    }

    /// Reads every configured cluster: (cluster name, view); `last` keeps the last known
    /// state of one that cannot be read now.
    pub async fn views(
        &self,
        last: &BTreeMap<String, ClusterView>,
    ) -> BTreeMap<String, ClusterView> {
        let mut out = BTreeMap::new();
        for (n, client) in &self.clients {
            let v = match client {
                Ok(c) => crate::cluster::read(c, last.get(n)).await,
                Err(e) => ClusterView {
                    cluster: n.clone(),
                    address: self.config.clusters[n].address.clone(),
                    error: Some(e.clone()),
                    ..ClusterView::default()
                },
            };
            out.insert(n.clone(), v);
        }
        out
    }

    /// Every cluster profile's status (one reading of each cluster).
    pub async fn statuses(&self) -> Vec<ServerStatus> {
        if self.names().is_empty() {
            return Vec::new();
        }
        let views = self.views(&BTreeMap::new()).await;
        self.statuses_in(&views).await
    }

    /// Every cluster profile's status from readings already made.
    pub async fn statuses_in(&self, views: &BTreeMap<String, ClusterView>) -> Vec<ServerStatus> {
        let mut out = Vec::new();
        for name in self.names() {
            let cname = self.config.servers[&name]
                .cluster
                .clone()
                .unwrap_or_default();
            match views.get(&cname) {
                Some(v) => out.push(self.status_in(&name, v, false).await),
                None => out.push(ServerStatus::unknown(&name)),
            }
        }
        out
    }

    pub async fn status(&self, name: &str) -> ServerStatus {
        let Some((p, _, client)) = self.parts(name) else {
            return ServerStatus::unknown(name);
        };
        let view = match client {
            Ok(c) => crate::cluster::read(c, None).await,
            Err(e) => ClusterView {
                cluster: p.cluster.clone().unwrap_or_default(),
                error: Some(e),
                ..ClusterView::default()
            },
        };
        self.status_in(name, &view, false).await
    }

    /// Submits the profile's job. Refused while one of ours for it is live; a refusal by the
    /// cluster (an unknown resource, a bad entrypoint) names the profile.
    pub async fn start(&self, name: &str) -> Result<Started, ControlError> {
        let (p, c, client) = self
            .parts(name)
            .ok_or_else(|| Self::failed(name, "not a cluster profile"))?;
        let client = client.map_err(|e| Self::failed(name, e))?;
        let jobs = client
            .jobs()
            .await
            .map_err(|e| Self::failed(name, e.to_string()))?;
        if current(&jobs, name, &self.config.file).is_some_and(|j| !j.status.is_terminal()) {
            return Err(ControlError::AlreadyRunning(Box::new(
                self.status(name).await,
            )));
        }
        let spec = launch_on(name, p, c, &self.config, &self.exe);
        let job = job_spec(
            name,
            p,
            &spec,
            &self.config.file,
            crate::time::unix_now_ms(),
        );
        let id = client
            .submit(&job)
            .await
            .map_err(|e| Self::failed(name, format!("the cluster refused the job: {e}")))?;
        let status = self.status(name).await;
        Ok(Started { run_id: id, status })
    }

    /// Stops every live job of the profile through the cluster, then waits for a final
    /// status within `grace` (plus a margin for the cluster's own SIGKILL).
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<ServerStatus, ControlError> {
        let (_, _, client) = self
            .parts(name)
            .ok_or_else(|| Self::failed(name, "not a cluster profile"))?;
        let client = client.map_err(|e| Self::failed(name, e))?;
        let jobs = client
            .jobs()
            .await
            .map_err(|e| Self::failed(name, e.to_string()))?;
        let mine = jobs_of(&jobs, name, &self.config.file);
        for j in mine.iter().filter(|j| !j.status.is_terminal()) {
            client
                .stop(&j.id)
                .await
                .map_err(|e| Self::failed(name, e.to_string()))?;
        }
        // A pending job has no process yet; Ray carries the stop out when it places the job
        // (its stop waits in the job's queue), so only running ones are waited for.
        let live: Vec<String> = mine
            .iter()
            .filter(|j| j.status == JobStatus::Running)
            .map(|j| j.id.clone())
            .collect();
        let deadline = Instant::now() + grace + Duration::from_secs(15);
        for id in &live {
            loop {
                match client.job(id).await {
                    Ok(j) if j.status.is_terminal() => break,
                    Ok(j) if Instant::now() > deadline => {
                        return Err(Self::failed(
                            name,
                            format!("job {id} is still {} after the stop", j.status.as_str()),
                        ))
                    }
                    Err(e) if Instant::now() > deadline => {
                        return Err(Self::failed(name, e.to_string()))
                    }
                    _ => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
        }
        let mut st = self.status(name).await;
        if st.is_running() {
            st.message = Some(format!(
                "stop requested while pending: nothing of it runs; Ray ends job {} when it places it",
                st.job.as_deref().unwrap_or("?")
            ));
        }
        Ok(st)
    }

    /// Waits until job `run_id` is ready, has ended, or `limit` passes.
    pub async fn wait_ready(&self, name: &str, run_id: &str, limit: Duration) -> WaitOutcome {
        let t0 = Instant::now();
        loop {
            let st = self.status(name).await;
            let ours = st.run_id.as_deref() == Some(run_id);
            if ours && st.state == State::Ready {
                return WaitOutcome::Ready(st);
            }
            if !ours || !st.is_running() {
                return WaitOutcome::Ended(st);
            }
            if t0.elapsed() >= limit {
                return WaitOutcome::TimedOut(st);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The whole log of the profile's current job, through the cluster.
    pub async fn logs(&self, name: &str) -> Result<String, ControlError> {
        let (_, _, client) = self
            .parts(name)
            .ok_or_else(|| Self::failed(name, "not a cluster profile"))?;
        let client = client.map_err(|e| Self::failed(name, e))?;
        let jobs = client
            .jobs()
            .await
            .map_err(|e| Self::failed(name, e.to_string()))?;
        let Some(j) = current(&jobs, name, &self.config.file) else {
            return Ok(String::new());
        };
        client
            .logs(&j.id)
            .await
            .map_err(|e| Self::failed(name, e.to_string()))
    }

    /// The log of job `id`.
    pub async fn job_logs(&self, name: &str, id: &str) -> Result<String, ControlError> {
        let (_, _, client) = self
            .parts(name)
            .ok_or_else(|| Self::failed(name, "not a cluster profile"))?;
        let client = client.map_err(|e| Self::failed(name, e))?;
        client
            .logs(id)
            .await
            .map_err(|e| Self::failed(name, e.to_string()))
    }
}

/// `cfg` with the route of each cluster profile pointed at the node its job runs on (DESIGN.md
/// §9). Routes of clusters that pin a `host`, of profiles with no live job, and of clusters
/// that cannot be read now are left as written. Returns what it changed, for the caller to say.
pub async fn resolve_routes(cfg: &Config) -> (Config, Vec<String>) {
    let mut out = cfg.clone();
    let mut notes = Vec::new();
    let wanted: Vec<(&String, &ServerProfile)> = cfg
        .servers
        .iter()
        .filter(|(_, p)| {
            p.route.is_some()
                && p.cluster
                    .as_ref()
                    .and_then(|c| cfg.clusters.get(c))
                    .is_some_and(|c| c.host.is_none())
        })
        .collect();
    if wanted.is_empty() {
        return (out, notes);
    }
    let jobs = ClusterJobs::new(Arc::new(cfg.clone()), PathBuf::new());
    let views = jobs.views(&BTreeMap::new()).await;
    for (name, p) in wanted {
        let (Some(route), Some(cname)) = (&p.route, &p.cluster) else {
            continue;
        };
        let Some(view) = views.get(cname).filter(|v| v.error.is_none()) else {
            continue;
        };
        let Some(job) = current(&view.jobs, name, &cfg.file).filter(|j| !j.status.is_terminal())
        else {
            continue;
        };
        let Some(node) = job
            .node_id
            .as_deref()
            .and_then(|id| view.nodes.iter().find(|n| n.id == id))
        else {
            continue;
        };
        let host = connect_host(p, &cfg.clusters[cname], Some(&node.address));
        if let Some(r) = out
            .llm
            .vllm_openai
            .as_mut()
            .and_then(|v| v.routes.get_mut(route))
        {
            if let Some(url) = with_host(&r.base_url, &host, p.port) {
                notes.push(format!(
                    "route {route} follows {name} to {} ({url})",
                    node.label()
                ));
                r.base_url = url;
            }
        }
    }
    (out, notes)
}

/// `url` with its host and port replaced.
pub fn with_host(url: &str, host: &str, port: u16) -> Option<String> {
    let mut u = reqwest::Url::parse(url).ok()?;
    u.set_host(Some(host)).ok()?;
    u.set_port(Some(port)).ok()?;
    Some(u.as_str().trim_end_matches('/').to_string())
}
