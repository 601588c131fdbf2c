//! Launch profiles with `cluster:` run as cluster jobs (DESIGN.md §9): submitted, read,
//! stopped and followed through the cluster, and found again from any shell by their metadata.
//! The cluster keeps the state; nothing is kept on this machine. What a job is and what its
//! state means is in `cluster_spec`.
use super::cluster_spec::{
    connect_host, current, health_path, job_spec, jobs_of, launch_on, status_of, with_host,
};
use super::launch::{self, LaunchSpec};
use super::outcome::{ControlError, Started, WaitOutcome};
use super::record::State;
use super::status::ServerStatus;
use crate::cluster::{ClusterView, JobStatus, RayClient};
use crate::config::{ClusterConfig, Config, ServerProfile};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a health probe of a cluster server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

    /// The profile, its cluster's config and a usable client, or the error naming the profile.
    fn client(
        &self,
        name: &str,
    ) -> Result<(&ServerProfile, &ClusterConfig, &RayClient), ControlError> {
        let (p, c, client) = self
            .parts(name)
            .ok_or_else(|| Self::failed(name, "not a cluster profile"))?;
        let client = client.map_err(|e| Self::failed(name, e))?;
        Ok((p, c, client))
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

    /// Whether a job's log shows its server came up (only read when its route does not answer
    /// and nothing else knows).
    async fn answered_before(&self, name: &str, job: &str) -> bool {
        let Some((_, _, Ok(client))) = self.parts(name) else {
            return false;
        };
        match client.logs(job).await {
            Ok(log) => super::cluster_spec::log_shows_ready(&log),
            Err(_) => false,
        }
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
        if let Some(j) = job.filter(|j| j.status == JobStatus::Running) {
            let ok = self.healthy(&st, &spec).await;
            // A fresh shell has not seen it answer: its log says whether it did (a lost node
            // is otherwise "starting" until Ray declares the node dead).
            let was_ready = was_ready || (!ok && self.answered_before(name, &j.id).await);
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
        let (p, c, client) = self.client(name)?;
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
        let mut job = job_spec(
            name,
            p,
            &spec,
            &self.config.file,
            crate::time::unix_now_ms(),
        );
        if let Some(w) = self.fit_warning(p, client).await {
            job.metadata.insert(super::cluster_spec::META_FIT.into(), w);
        }
        let id = client
            .submit(&job)
            .await
            .map_err(|e| Self::failed(name, format!("the cluster refused the job: {e}")))?;
        let status = self.status(name).await;
        Ok(Started { run_id: id, status })
    }

    /// The fit estimate on the cluster's best node, when it says the server will not fit.
    /// The model is read from this machine's disk (a shared path or the same hub cache).
    async fn fit_warning(
        &self,
        p: &ServerProfile,
        client: &crate::cluster::ray::RayClient,
    ) -> Option<String> {
        let need =
            (p.tensor_parallel_size.unwrap_or(1) * p.pipeline_parallel_size.unwrap_or(1)) as usize;
        let gpus = super::cluster_spec::node_gpus(&client.nodes().await.ok()?, need);
        let (p, base) = (p.clone(), self.config.base_dir.clone());
        let fit =
            tokio::task::spawn_blocking(move || crate::models::plan::for_profile(&p, &base, &gpus))
                .await
                .ok()??
                .ok()?;
        (!fit.fits()).then(|| format!("{} (on the cluster's best node)", fit.line()))
    }

    /// Stops every live job of the profile through the cluster, then waits for a final
    /// status within `grace` (plus a margin for the cluster's own SIGKILL).
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<ServerStatus, ControlError> {
        let (_, _, client) = self.client(name)?;
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
        let (_, _, client) = self.client(name)?;
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
        let (_, _, client) = self.client(name)?;
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
