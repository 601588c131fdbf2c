//! Start, stop, restart and status of servers, for the CLI and the console alike. Every
//! operation reads and writes the shared state directory, so a server started in one shell is
//! seen and stopped from any other.
use super::cluster_jobs::ClusterJobs;
use super::launch::{self, LaunchSpec};
use super::logs;
pub use super::outcome::{ControlError, Started, WaitOutcome};
use super::preflight;
use super::record::{Record, State};
use super::statedir::{Lock, StateDir, StopRequest};
use super::status::{from_record, ServerStatus};
use crate::config::{Config, ServerProfile};
use crate::procfs::{self, Identity};
use crate::time::unix_now;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a new monitor gets to write its first record.
const MONITOR_START: Duration = Duration::from_secs(10);
/// Extra time, beyond the grace period, that a stop may take to be confirmed.
const STOP_MARGIN: Duration = Duration::from_secs(15);

/// The control surface over one config and one state directory.
#[derive(Debug, Clone)]
pub struct Supervisor {
    dir: StateDir,
    config: Arc<Config>,
    /// This program: the monitor and `kind: sim` servers run it.
    exe: PathBuf,
    /// Profiles with `cluster:` run as cluster jobs; every operation below hands them there.
    jobs: ClusterJobs,
    /// What the engine last read (records, clusters), for the samplers.
    seen: super::seen::Seen,
}

impl Supervisor {
    pub fn new(config: Arc<Config>, dir: StateDir, exe: PathBuf) -> Self {
        let jobs = ClusterJobs::new(config.clone(), exe.clone());
        Self {
            dir,
            config,
            exe,
            jobs,
            seen: super::seen::Seen::default(),
        }
    }

    /// What this supervisor's engine last read: one reader per source.
    pub fn seen(&self) -> &super::seen::Seen {
        &self.seen
    }

    /// The cluster half: profiles with `cluster:`.
    pub fn cluster_jobs(&self) -> &ClusterJobs {
        &self.jobs
    }

    pub fn is_cluster(&self, name: &str) -> bool {
        self.jobs.is_cluster(name)
    }

    /// Any profile's status: a cluster profile's from its cluster, a local one's from the
    /// state directory.
    pub async fn status_async(&self, name: &str) -> ServerStatus {
        if self.is_cluster(name) {
            self.jobs.status(name).await
        } else {
            self.status(name)
        }
    }

    /// Every server: local ones, then cluster profiles (one reading of each cluster), in
    /// the config's order.
    pub async fn all_statuses(&self) -> Vec<ServerStatus> {
        let mut remote = self.jobs.statuses().await;
        let mut out = Vec::new();
        for n in self.names() {
            match remote.iter().position(|s| s.name == n) {
                Some(i) => out.push(remote.remove(i)),
                None => out.push(self.status(&n)),
            }
        }
        out
    }

    /// The state directory from the environment, and this executable.
    pub fn from_env(config: Arc<Config>) -> std::io::Result<Self> {
        Ok(Self::new(
            config,
            StateDir::new(super::statedir::default_root()?),
            std::env::current_exe()?,
        ))
    }

    pub fn dir(&self) -> &StateDir {
        &self.dir
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This supervisor with one more profile (a server started without one in the file).
    pub fn with_profile(mut self, name: &str, p: ServerProfile) -> Self {
        let mut c = (*self.config).clone();
        c.servers.insert(name.to_string(), p);
        self.config = Arc::new(c);
        self
    }

    pub fn profile(&self, name: &str) -> Result<&ServerProfile, ControlError> {
        self.config
            .servers
            .get(name)
            .ok_or_else(|| ControlError::UnknownServer {
                name: name.to_string(),
                known: self
                    .config
                    .servers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn launch_spec(&self, name: &str) -> Result<LaunchSpec, ControlError> {
        let p = self.profile(name)?;
        if let Some(spec) = self.jobs.launch_spec(name) {
            return Ok(spec);
        }
        let mut spec = launch::build(name, p, &self.config.base_dir, &self.config.file, &self.exe);
        launch::keep_env_values_out(&mut spec, &self.config.from_env);
        Ok(spec)
    }

    /// Configured profiles first (in file order), then servers known only from the state
    /// directory (started under an older config) that are still running.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.config.servers.keys().cloned().collect();
        for n in self.dir.known_servers() {
            if !v.contains(&n) && self.status(&n).is_running() {
                v.push(n);
            }
        }
        v
    }

    /// The servers on this machine (cluster profiles need a call: [`Self::all_statuses`]).
    pub fn statuses(&self) -> Vec<ServerStatus> {
        self.local_names().iter().map(|n| self.status(n)).collect()
    }

    /// [`Self::names`] without cluster profiles.
    pub fn local_names(&self) -> Vec<String> {
        let mut v = self.names();
        v.retain(|n| !self.is_cluster(n));
        v
    }

    /// The record reconciled with what is true now: a dead monitor or a recycled pid is
    /// never taken for a live server.
    pub fn status(&self, name: &str) -> ServerStatus {
        let profile = self.config.servers.get(name);
        let rec = self.dir.read_record(name);
        let mut st = match &rec {
            Some(r) => from_record(r),
            None => {
                let spec = profile.map(|p| {
                    launch::build(name, p, &self.config.base_dir, &self.config.file, &self.exe)
                });
                ServerStatus {
                    kind: profile.map_or("?", |p| p.kind.as_str()).to_string(),
                    host: spec.as_ref().map_or_else(String::new, |s| s.host.clone()),
                    port: profile.map_or(0, |p| p.port),
                    log_path: self.dir.log_path(name).display().to_string(),
                    route: profile.and_then(|p| p.route.clone()),
                    model: spec.as_ref().and_then(|s| s.model.clone()),
                    argv: spec
                        .map(|s| super::record::redact_argv(&s.argv))
                        .unwrap_or_default(),
                    ..ServerStatus::unknown(name)
                }
            }
        };
        st.configured = profile.is_some();
        st.autostart = profile.is_some_and(|p| p.autostart);
        if let Some(r) = rec.filter(|r| r.state.is_running()) {
            if !self.dir.monitor_alive(name) {
                let server_alive = r.server.as_ref().is_some_and(Identity::is_alive);
                if server_alive {
                    st.message =
                        Some("its monitor is gone: the exit status will not be recorded".into());
                } else {
                    st.state = if r.stop_requested {
                        State::Exited
                    } else {
                        State::Crashed
                    };
                    st.message = Some("the server and its monitor ended without a record (killed together, or the machine restarted)".into());
                    st.uptime_s = None;
                }
            }
        }
        st
    }

    /// Starts `name` in the background and returns once its monitor has reported.
    pub async fn start(&self, name: &str) -> Result<Started, ControlError> {
        let profile = self.profile(name)?.clone();
        if self.is_cluster(name) {
            return self.jobs.start(name).await;
        }
        let mut spec = self.launch_spec(name)?;
        let now = self.status(name);
        if now.is_running() {
            return Err(ControlError::AlreadyRunning(Box::new(now)));
        }
        let failed = |message: String| ControlError::Failed {
            name: name.to_string(),
            message,
        };
        let base = self.config.base_dir.clone();
        let spec2 = spec.clone();
        tokio::task::spawn_blocking(move || {
            preflight::check(
                &spec2,
                &profile,
                &base,
                crate::telemetry::gpu::nvml::device_count,
            )
        })
        .await
        .map_err(|e| failed(e.to_string()))??;
        spec.fit_warning = self.fit_estimate(name).await.and_then(|f| match f {
            Ok(f) if !f.fits() => Some(f.line()),
            _ => None,
        });

        self.dir.ensure(name).map_err(|e| {
            failed(format!(
                "cannot create {}: {e}",
                self.dir.server_dir(name).display()
            ))
        })?;
        let _starting = Lock::try_take(&self.dir.start_lock(name))
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed("another start of this server is in progress".into()))?;
        if self.dir.monitor_alive(name) {
            return Err(ControlError::AlreadyRunning(Box::new(self.status(name))));
        }
        let _ = std::fs::remove_file(self.dir.stop_path(name));
        self.dir
            .write_launch(name, &spec)
            .map_err(|e| failed(format!("cannot write the launch spec: {e}")))?;
        let run_id = format!("{:x}-{:x}", (unix_now() * 1e6) as u64, std::process::id());
        let mon_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.dir.monitor_log(name))
            .map_err(|e| failed(e.to_string()))?;
        let status = std::process::Command::new(&self.exe)
            .arg("__monitor")
            .arg("--state-dir")
            .arg(self.dir.root())
            .args(["--name", name, "--run-id", &run_id])
            .stdin(std::process::Stdio::null())
            .stdout(mon_log.try_clone().map_err(|e| failed(e.to_string()))?)
            .stderr(mon_log)
            .status()
            .map_err(|e| {
                failed(format!(
                    "cannot start the monitor `{}`: {e}",
                    self.exe.display()
                ))
            })?;
        if !status.success() {
            return Err(failed(format!("the monitor could not start ({status})")));
        }
        let t0 = Instant::now();
        loop {
            if let Some(r) = self.dir.read_record(name).filter(|r| r.run_id == run_id) {
                if r.state == State::Crashed && r.server.is_none() {
                    return Err(failed(
                        r.message.unwrap_or_else(|| "could not start".into()),
                    ));
                }
                return Ok(Started {
                    run_id,
                    status: self.status(name),
                });
            }
            if t0.elapsed() > MONITOR_START {
                let tail = logs::tail(&self.dir.monitor_log(name), 5, 0).join("\n  ");
                return Err(failed(format!(
                    "its monitor did not report within {MONITOR_START:?}:\n  {tail}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The fit estimate for a local vLLM profile on this machine's GPUs (or the CPU build's
    /// KV space); `None` when it cannot be made.
    pub async fn fit_estimate(
        &self,
        name: &str,
    ) -> Option<Result<crate::models::fit::Fit, String>> {
        let p = self.profile(name).ok()?.clone();
        if p.cluster.is_some() {
            return None;
        }
        let base = self.config.base_dir.clone();
        tokio::task::spawn_blocking(move || {
            let gpus = crate::models::plan::local_gpus().unwrap_or_default();
            crate::models::plan::for_profile(&p, &base, &gpus)
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits until run `run_id` of `name` is ready, has ended, or `limit` passes.
    pub async fn wait_ready(&self, name: &str, run_id: &str, limit: Duration) -> WaitOutcome {
        if self.is_cluster(name) {
            return self.jobs.wait_ready(name, run_id, limit).await;
        }
        let t0 = Instant::now();
        loop {
            let st = self.status(name);
            let ours = st.run_id.as_deref() == Some(run_id);
            if ours && st.state == State::Ready {
                return WaitOutcome::Ready(st);
            }
            // A restart under the on-failure policy keeps the run going; wait it out.
            let restarting = st.state == State::Crashed && self.dir.monitor_alive(name);
            if !ours || (!st.is_running() && !restarting) {
                return WaitOutcome::Ended(st);
            }
            if t0.elapsed() >= limit {
                return WaitOutcome::TimedOut(st);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops `name`: SIGTERM to its process group, SIGKILL after `timeout` (the profile's
    /// `stop_timeout` when `None`), done when every process is gone.
    pub async fn stop(
        &self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<ServerStatus, ControlError> {
        let grace = timeout.unwrap_or_else(|| {
            crate::input::duration(
                self.config
                    .servers
                    .get(name)
                    .and_then(|p| p.stop_timeout)
                    .unwrap_or(launch::DEFAULT_STOP_TIMEOUT_S),
            )
        });
        if self.is_cluster(name) {
            return self.jobs.stop(name, grace).await;
        }
        let st = self.status(name);
        if !st.is_running() {
            return Ok(st);
        }
        let failed = |message: String| ControlError::Failed {
            name: name.to_string(),
            message,
        };
        let rec = self.dir.read_record(name);
        let monitor = rec.as_ref().and_then(|r| r.monitor.clone());
        if self.dir.monitor_alive(name) && monitor.as_ref().is_some_and(Identity::is_alive) {
            let req = StopRequest {
                timeout_s: grace.as_secs_f64(),
                restart: false,
            };
            self.dir
                .request_stop(name, req)
                .map_err(|e| failed(format!("cannot write the stop request: {e}")))?;
            let pid = monitor.map_or(0, |m| m.pid);
            // SAFETY: signalling the verified monitor process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + grace + STOP_MARGIN;
            while self.dir.monitor_alive(name) {
                if Instant::now() > deadline {
                    return Err(failed(format!(
                        "not stopped {:.0} s after the request; its monitor still runs",
                        (grace + STOP_MARGIN).as_secs_f64()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        } else if let Some(r) = rec {
            // No monitor to do it: signal what is left ourselves.
            self.stop_orphan(r, grace).await.map_err(failed)?;
        }
        let st = self.status(name);
        if let Some(pgid) = st.pgid {
            let left = procfs::group_members(pgid);
            if !left.is_empty() {
                return Err(failed(format!(
                    "processes {left:?} of group {pgid} are still alive"
                )));
            }
        }
        Ok(st)
    }

    async fn stop_orphan(&self, mut r: Record, grace: Duration) -> Result<(), String> {
        let alive = r.server.as_ref().is_some_and(Identity::is_alive);
        if let (true, Some(pgid)) = (alive, r.pgid) {
            procfs::signal_all(pgid, &[], libc::SIGTERM);
            let kill_at = Instant::now() + grace;
            let mut killed = false;
            while !procfs::group_members(pgid).is_empty() {
                if Instant::now() >= kill_at && !killed {
                    procfs::signal_all(pgid, &procfs::group_members(pgid), libc::SIGKILL);
                    killed = true;
                }
                if Instant::now() >= kill_at + STOP_MARGIN {
                    return Err(format!("process group {pgid} survived SIGKILL"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        r.state = State::Exited;
        r.stop_requested = true;
        r.ended_at = Some(unix_now());
        r.message = Some("stopped without its monitor: the exit status is unknown".into());
        self.dir.write_record(&r).map_err(|e| e.to_string())
    }

    /// Stop (if running), then start with the current profile.
    pub async fn restart(
        &self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<Started, ControlError> {
        self.profile(name)?;
        self.stop(name, timeout).await?;
        self.start(name).await
    }

    /// The last `n` lines of the server's log (rotations included).
    pub fn log_tail(&self, name: &str, n: usize) -> Vec<String> {
        logs::tail(&self.dir.log_path(name), n, launch::DEFAULT_LOG_KEEP)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.log_path(name)
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }
}
