//! The monitor: one small process per running server (the approach of podman's conmon).
//!
//! It is this program started as `anorag-tui __monitor`, detached from whoever started it.
//! It owns the server for its whole life: spawns it in its own process group, writes its
//! output to the rotating log, probes readiness, reaps it, stops it on request (SIGTERM to
//! the group, SIGKILL after the grace period, until every process is gone), restarts it under
//! the `on-failure` policy, and records each state in the state directory, so the exit code
//! or signal is known after every client has gone.
use super::launch::LaunchSpec;
use super::logs::RotatingWriter;
use super::record::{redact_argv, Record, State};
use super::statedir::{Lock, StateDir};
use crate::config::RestartPolicy;
use crate::procfs::{self, Identity};
use crate::time::unix_now;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// Health probe pace and patience.
const PROBE_STARTING: Duration = Duration::from_millis(500);
const PROBE_READY: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Consecutive failed probes that make a ready server unhealthy.
const UNHEALTHY_AFTER: u32 = 3;
/// After the main process exits, how long its leftovers get before SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

fn log(msg: &str) {
    eprintln!(
        "{} monitor[{}]: {msg}",
        crate::time::rfc3339(unix_now()),
        std::process::id()
    );
}

/// Entry point of `anorag-tui __monitor`. Must run before any thread or runtime exists:
/// it forks to detach, and fork only copies the calling thread.
pub fn main(state_dir: &std::path::Path, name: &str, run_id: &str) -> ExitCode {
    // SAFETY: single-threaded here (called before the runtime is built); the parent only
    // exits, the child continues as the monitor.
    match unsafe { libc::fork() } {
        -1 => {
            log(&format!("fork failed: {}", std::io::Error::last_os_error()));
            return ExitCode::FAILURE;
        }
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain syscalls in the child; no shared state.
    unsafe {
        libc::setsid();
        // Orphaned descendants of the server are re-parented to us, so none escapes cleanup.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let dir = StateDir::new(state_dir);
    let lock = match Lock::try_take(&dir.monitor_lock(name)) {
        Ok(Some(l)) => l,
        Ok(None) => {
            log(&format!("another monitor already runs server `{name}`"));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            log(&format!(
                "cannot lock {}: {e}",
                dir.monitor_lock(name).display()
            ));
            return ExitCode::FAILURE;
        }
    };
    let spec = match dir.read_launch(name) {
        Ok(s) => s,
        Err(e) => {
            log(&format!("cannot read the launch spec: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(Monitor::new(dir, spec, run_id).run());
    drop(lock);
    code
}

struct Monitor {
    dir: StateDir,
    spec: LaunchSpec,
    rec: Record,
    log: Arc<Mutex<Option<RotatingWriter>>>,
    me: i32,
    /// The thread copying the server's output into its log.
    pump: Option<std::thread::JoinHandle<()>>,
}

/// How the server's main process ended.
#[derive(Debug, Clone, Copy)]
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
}

impl Monitor {
    fn new(dir: StateDir, spec: LaunchSpec, run_id: &str) -> Self {
        let me = std::process::id() as i32;
        let log_path = dir.log_path(&spec.name);
        let writer = RotatingWriter::open(&log_path, spec.log_max_bytes, spec.log_keep)
            .map_err(|e| log(&format!("cannot open {}: {e}", log_path.display())))
            .ok();
        let rec = Record {
            name: spec.name.clone(),
            run_id: run_id.to_string(),
            state: State::Starting,
            kind: spec.kind.as_str().to_string(),
            monitor: Identity::of(me),
            host: spec.host.clone(),
            port: spec.port,
            health_url: spec.health_url.clone(),
            route: spec.route.clone(),
            model: spec.model.clone(),
            fit_warning: spec.fit_warning.clone(),
            argv: redact_argv(&spec.argv),
            log_path: log_path.display().to_string(),
            updated_at: unix_now(),
            ..Record::default()
        };
        Self {
            dir,
            spec,
            rec,
            log: Arc::new(Mutex::new(writer)),
            me,
            pump: None,
        }
    }

    fn save(&mut self) {
        self.rec.updated_at = unix_now();
        if let Err(e) = self.dir.write_record(&self.rec) {
            log(&format!("cannot write the record: {e}"));
        }
    }

    /// A line of our own in the server's log, so the log tells the whole story.
    fn mark(&self, msg: &str) {
        let line = format!("[anorag-tui {}] {msg}\n", crate::time::rfc3339(unix_now()));
        if let Some(w) = self.log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = w.write(line.as_bytes());
        }
    }

    async fn run(mut self) -> ExitCode {
        let (Ok(mut sigchld), Ok(mut sigterm), Ok(mut sigint)) = (
            signal(SignalKind::child()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log("cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(PROBE_TIMEOUT)
            .build()
            .unwrap_or_default();
        let mut crashes: Vec<Instant> = Vec::new();
        loop {
            let Some(pid) = self.spawn() else {
                return ExitCode::FAILURE;
            };
            let ended = self
                .watch(pid, &client, &mut sigchld, &mut sigterm, &mut sigint)
                .await;
            self.clean_up(pid, &mut sigchld).await;
            self.rec.exit_code = ended.code;
            self.rec.signal = ended.signal;
            self.rec.ended_at = Some(unix_now());
            self.rec.health_failures = 0;
            let failed = ended.code != Some(0);
            let how = describe(ended);
            if self.rec.stop_requested || !failed {
                self.rec.state = State::Exited;
                self.mark(&format!("server exited ({how})"));
                self.save();
                return ExitCode::SUCCESS;
            }
            self.rec.state = State::Crashed;
            self.mark(&format!("server crashed ({how})"));
            if self.rec.ready_at.is_none() {
                self.explain_failure().await;
            }
            if self.spec.restart != RestartPolicy::OnFailure {
                self.save();
                return ExitCode::SUCCESS;
            }
            // Crash-loop guard: at most `max_restarts` within the window, with a growing pause.
            let now = Instant::now();
            let window = crate::input::duration(self.spec.restart_window_s);
            crashes.retain(|t| now.duration_since(*t) < window);
            if crashes.len() as u32 >= self.spec.max_restarts {
                let msg = format!(
                    "crash loop: {} restarts within {:.0} s; not restarting again",
                    crashes.len(),
                    self.spec.restart_window_s
                );
                self.mark(&msg);
                self.rec.message = Some(msg);
                self.save();
                return ExitCode::SUCCESS;
            }
            crashes.push(now);
            let pause = Duration::from_secs(1 << (crashes.len() - 1).min(5));
            let msg = format!(
                "restarting in {} s ({}/{} within {:.0} s)",
                pause.as_secs(),
                crashes.len(),
                self.spec.max_restarts,
                self.spec.restart_window_s
            );
            self.mark(&msg);
            self.rec.message = Some(msg);
            self.save();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = sigterm.recv() => { self.rec.stop_requested = true; self.save(); return ExitCode::SUCCESS; }
                _ = sigint.recv() => { self.rec.stop_requested = true; self.save(); return ExitCode::SUCCESS; }
            }
            self.rec.restarts += 1;
        }
    }

    /// Starts the server; on failure records why and returns `None`.
    fn spawn(&mut self) -> Option<i32> {
        let spec = &self.spec;
        let (reader, writer) = match std::io::pipe() {
            Ok(p) => p,
            Err(e) => return self.fail_to_start(format!("cannot create the output pipe: {e}")),
        };
        let Ok(writer2) = writer.try_clone() else {
            return self.fail_to_start("cannot duplicate the output pipe".into());
        };
        let mut cmd = Command::new(&spec.argv[0]);
        cmd.args(&spec.argv[1..])
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            .process_group(0);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        for (k, t) in &spec.env_templates {
            cmd.env(k, super::launch::expand(t, &|v| std::env::var(v).ok()));
        }
        for (child_var, ours) in &spec.secret_env {
            if let Ok(v) = std::env::var(ours) {
                cmd.env(child_var, v);
            }
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return self.fail_to_start(format!("cannot start `{}`: {e}", spec.argv[0])),
        };
        // Our copies of the write end must go, or the reader never sees the end of output.
        drop(cmd);
        let pid = child.id() as i32;
        // The reaper (SIGCHLD + waitpid) owns the exit status; std's handle is not needed.
        drop(child);
        let sink = self.log.clone();
        self.pump = Some(std::thread::spawn(move || pump(reader, sink)));
        self.rec.server = Identity::of(pid);
        self.rec.pgid = Some(pid);
        self.rec.state = State::Starting;
        self.rec.started_at = Some(unix_now());
        self.rec.ready_at = None;
        self.rec.ended_at = None;
        self.rec.exit_code = None;
        self.rec.signal = None;
        self.mark(&format!("started pid {pid}: {}", self.rec.argv.join(" ")));
        self.save();
        Some(pid)
    }

    /// Reads the log once its pump has written the last of it, and keeps the one line that
    /// says why the start failed.
    async fn explain_failure(&mut self) {
        if let Some(h) = self.pump.take() {
            // The pipe closed with the process group; the pump ends at once, but a grandchild
            // that kept the pipe open must not hold the monitor up.
            let until = Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let lines = super::logs::tail(
            &self.dir.log_path(&self.spec.name),
            super::explain::LOG_LINES,
            self.spec.log_keep,
        );
        if let Some(why) = super::explain::explain(&lines) {
            self.mark(&format!("why: {why}"));
            self.rec.failure = Some(why);
        }
    }

    fn fail_to_start(&mut self, msg: String) -> Option<i32> {
        self.mark(&msg);
        self.rec.state = State::Crashed;
        self.rec.message = Some(msg);
        self.rec.ended_at = Some(unix_now());
        self.save();
        None
    }

    /// Until the main process ends: probes health, handles stop requests.
    async fn watch(
        &mut self,
        pid: i32,
        client: &reqwest::Client,
        sigchld: &mut tokio::signal::unix::Signal,
        sigterm: &mut tokio::signal::unix::Signal,
        sigint: &mut tokio::signal::unix::Signal,
    ) -> Ended {
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut next_probe = tokio::time::Instant::now() + PROBE_STARTING;
        loop {
            if let Some(e) = reap(pid) {
                return e;
            }
            let kill_deadline = kill_at;
            let kill_sleep = async move {
                match kill_deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sigchld.recv() => {}
                // Catches a SIGCHLD that came before the handler saw it.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = sigterm.recv() => self.begin_stop(pid, &mut kill_at),
                _ = sigint.recv() => self.begin_stop(pid, &mut kill_at),
                _ = kill_sleep => {
                    self.mark(&format!("still running {:.0} s after SIGTERM: sending SIGKILL", self.spec.stop_timeout_s));
                    procfs::signal_all(pid, &procfs::server_processes(pid, Some(self.me)), libc::SIGKILL);
                    kill_at = None;
                }
                _ = tokio::time::sleep_until(next_probe), if !self.rec.stop_requested => {
                    let ok = probe(client, &self.spec.health_url).await;
                    self.on_probe(ok);
                    next_probe = tokio::time::Instant::now()
                        + if self.rec.state == State::Starting { PROBE_STARTING } else { PROBE_READY };
                }
            }
        }
    }

    fn begin_stop(&mut self, pid: i32, kill_at: &mut Option<tokio::time::Instant>) {
        if self.rec.stop_requested {
            return;
        }
        let req = self.dir.take_stop_request(&self.spec.name);
        if let Some(r) = req {
            self.spec.stop_timeout_s = r.timeout_s;
        }
        self.rec.stop_requested = true;
        self.rec.state = State::Stopping;
        self.mark(&format!(
            "stop requested: SIGTERM to process group {pid}, SIGKILL after {:.0} s",
            self.spec.stop_timeout_s
        ));
        self.save();
        procfs::signal_all(
            pid,
            &procfs::server_processes(pid, Some(self.me)),
            libc::SIGTERM,
        );
        *kill_at = Some(
            tokio::time::Instant::now() + crate::input::duration(self.spec.stop_timeout_s.max(0.0)),
        );
    }

    fn on_probe(&mut self, ok: bool) {
        let before = self.rec.state;
        if ok {
            self.rec.health_failures = 0;
            self.rec.state = State::Ready;
            if self.rec.ready_at.is_none() {
                self.rec.ready_at = Some(unix_now());
                self.rec.failure = None;
                let took = self.rec.ready_at.unwrap_or(0.0) - self.rec.started_at.unwrap_or(0.0);
                self.mark(&format!(
                    "ready: {} answered 200 after {took:.1} s",
                    self.spec.health_url
                ));
                self.rec.message = None;
            } else if before == State::Unhealthy {
                self.mark("healthy again");
                self.rec.message = None;
            }
        } else if matches!(before, State::Ready | State::Unhealthy) {
            self.rec.health_failures += 1;
            if self.rec.health_failures >= UNHEALTHY_AFTER && before == State::Ready {
                self.rec.state = State::Unhealthy;
                let msg = format!(
                    "{} failed {UNHEALTHY_AFTER} probes in a row",
                    self.spec.health_url
                );
                self.mark(&format!("unhealthy: {msg}"));
                self.rec.message = Some(msg);
            }
        }
        if self.rec.state != before || (ok && before != State::Ready) {
            self.save();
        }
    }

    /// After the main process ended: whatever it left behind gets SIGTERM, then SIGKILL, and
    /// is reaped, so "stopped" means no process of the server remains.
    async fn clean_up(&mut self, pgid: i32, sigchld: &mut tokio::signal::unix::Signal) {
        let left = procfs::server_processes(pgid, Some(self.me));
        if left.is_empty() {
            reap_all();
            return;
        }
        self.mark(&format!(
            "{} leftover process(es) {left:?}: SIGTERM",
            left.len()
        ));
        procfs::signal_all(pgid, &left, libc::SIGTERM);
        let deadline = Instant::now() + LEFTOVER_GRACE;
        let mut killed = false;
        loop {
            reap_all();
            let left = procfs::server_processes(pgid, Some(self.me));
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline && !killed {
                self.mark(&format!("leftovers {left:?} ignored SIGTERM: SIGKILL"));
                procfs::signal_all(pgid, &left, libc::SIGKILL);
                killed = true;
            }
            if Instant::now() >= deadline + LEFTOVER_GRACE {
                self.mark(&format!(
                    "processes {left:?} survived SIGKILL (uninterruptible?)"
                ));
                return;
            }
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// Copies the server's output into the log until every writer has closed the pipe.
fn pump(mut reader: std::io::PipeReader, sink: Arc<Mutex<Option<RotatingWriter>>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Some(w) = sink.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    let _ = w.write(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reaps every exited child; returns how `main` ended if it was among them.
fn reap(main: i32) -> Option<Ended> {
    let mut main_end = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own children, non-blocking.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return main_end;
        }
        if r == main {
            main_end = Some(if libc::WIFEXITED(status) {
                Ended {
                    code: Some(libc::WEXITSTATUS(status)),
                    signal: None,
                }
            } else {
                Ended {
                    code: None,
                    signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
                }
            });
        }
    }
}

fn reap_all() {
    let _ = reap(-2);
}

async fn probe(client: &reqwest::Client, url: &str) -> bool {
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

fn describe(e: Ended) -> String {
    match (e.code, e.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s} ({})", procfs::signal_name(s)),
        _ => "exit status unknown".into(),
    }
}
