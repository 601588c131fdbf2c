//! `anorag-tui server list|start|stop|restart|status|logs`: the lifecycle from any shell.
use crate::supervisor::logs::LogFollower;
use crate::supervisor::{ControlError, ServerStatus, Supervisor, WaitOutcome};
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Every profile with its current state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a server in the background (it outlives this command): a profile by name, or
    /// any model with --model (no profile needed; --save keeps one).
    Start {
        /// A profile; with --model, the new server's name (default: the model's name).
        name: Option<String>,
        #[command(flatten)]
        adhoc: super::adhoc_server::AdhocArgs,
        /// Exit 0 once it is ready; non-zero, with its last log lines, if it exits first or
        /// the timeout passes.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait for readiness (with --wait).
        #[arg(long, default_value_t = 600.0, value_parser = crate::input::seconds(0.001))]
        timeout: f64,
        /// Do not start when the fit estimate says it will not fit (default: warn and start;
        /// vLLM's own profile run decides).
        #[arg(long)]
        require_fit: bool,
    },
    /// Stop a server: SIGTERM to its process group, SIGKILL after the grace period.
    Stop {
        name: String,
        /// Grace period in seconds (default: the profile's stop_timeout, else 30).
        #[arg(long, value_parser = crate::input::seconds(0.001))]
        timeout: Option<f64>,
    },
    /// Stop, then start with the current profile.
    Restart {
        name: String,
        #[arg(long)]
        wait: bool,
        /// Seconds to wait for readiness (with --wait).
        #[arg(long, default_value_t = 600.0, value_parser = crate::input::seconds(0.001))]
        timeout: f64,
    },
    /// State, pid, port, uptime, exit code or signal.
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The server's own output.
    Logs {
        name: String,
        #[arg(long, short)]
        follow: bool,
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
}

/// Arguments of the hidden `__monitor` subcommand (started by `server start`).
#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    #[arg(long)]
    pub state_dir: std::path::PathBuf,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub run_id: String,
}

pub async fn run(explicit: Option<&Path>, cmd: ServerCmd) -> ExitCode {
    let cfg = or_exit!(super::config_or_exit(explicit));
    let sup = match Supervisor::from_env(Arc::new(cfg)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot find this program's own path: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        ServerCmd::List { json } => {
            let all = sup.all_statuses().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            } else {
                print_table(&all);
            }
            ExitCode::SUCCESS
        }
        ServerCmd::Status { name, json } => {
            let all = match &name {
                Some(n) => {
                    if let Err(e) = sup.profile(n) {
                        if !sup.dir().server_dir(n).exists() {
                            eprintln!("error: {e}");
                            return ExitCode::from(2);
                        }
                    }
                    vec![sup.status_async(n).await]
                }
                None => sup.all_statuses().await,
            };
            if json {
                let text = match (&name, all.first()) {
                    (Some(_), Some(one)) => serde_json::to_string_pretty(one),
                    _ => serde_json::to_string_pretty(&all),
                };
                println!("{}", text.unwrap_or_default());
            } else {
                print_table(&all);
                for s in &all {
                    if let Some(why) = &s.failure {
                        println!("{}: failed to start: {why}", s.name);
                    }
                    if let Some(m) = &s.message {
                        println!("{}: {m}", s.name);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        ServerCmd::Start {
            name,
            adhoc,
            wait,
            timeout,
            require_fit,
        } => {
            let (sup, name) = match adhoc.model.is_some() {
                true => or_exit!(super::adhoc_server::prepare(sup, name, adhoc)),
                false => match name {
                    Some(n) => (sup, n),
                    None => {
                        eprintln!("error: name a profile to start, or give --model");
                        return ExitCode::from(2);
                    }
                },
            };
            if require_fit && !fit_allows(&sup, &name).await {
                return ExitCode::FAILURE;
            }
            start(&sup, &name, wait, timeout).await
        }
        ServerCmd::Stop { name, timeout } => stop(&sup, &name, timeout).await,
        ServerCmd::Restart {
            name,
            wait,
            timeout,
        } => {
            if let Err(e) = sup.profile(&name) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let code = stop(&sup, &name, None).await;
            if code != ExitCode::SUCCESS {
                return code;
            }
            start(&sup, &name, wait, timeout).await
        }
        ServerCmd::Logs {
            name,
            follow,
            lines,
        } => logs(&sup, &name, follow, lines).await,
    }
}

/// With --require-fit: false (after saying why) when the estimate says it will not fit.
async fn fit_allows(sup: &Supervisor, name: &str) -> bool {
    match sup.fit_estimate(name).await {
        Some(Ok(f)) if !f.fits() => {
            eprintln!("error: {name} {} (--require-fit)", f.line());
            false
        }
        Some(Err(e)) => {
            eprintln!("warning: {name}: no fit estimate: {e}");
            true
        }
        _ => true,
    }
}

async fn start(sup: &Supervisor, name: &str, wait: bool, timeout: f64) -> ExitCode {
    let run_id = match sup.start(name).await {
        Ok(s) => {
            let pid = s
                .status
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into());
            match &s.status.cluster {
                Some(c) => eprintln!(
                    "submitted {name} to cluster {c}: job {} ({}){}",
                    s.run_id,
                    s.status.state,
                    s.status
                        .message
                        .as_ref()
                        .map(|m| format!("; {m}"))
                        .unwrap_or_default()
                ),
                None => eprintln!("started {name}: pid {pid}, log {}", s.status.log_path),
            }
            if let Some(w) = &s.status.fit_warning {
                eprintln!("warning: {name} {w} (starting anyway: vLLM's own profile run decides; --require-fit refuses)");
            }
            s.run_id
        }
        Err(ControlError::AlreadyRunning(st)) => {
            eprintln!(
                "{name} is already running ({}, pid {})",
                st.state,
                st.pid.unwrap_or(0)
            );
            match st.run_id {
                Some(r) if wait => r,
                _ => return ExitCode::SUCCESS,
            }
        }
        Err(e @ ControlError::UnknownServer { .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !wait {
        return ExitCode::SUCCESS;
    }
    let health = sup
        .launch_spec(name)
        .map(|s| s.health_url)
        .unwrap_or_default();
    eprintln!("waiting up to {timeout:.0} s for {health} to answer 200 ...");
    match sup
        .wait_ready(name, &run_id, crate::input::duration(timeout.max(0.0)))
        .await
    {
        WaitOutcome::Ready(st) => {
            match &st.node {
                Some(node) => eprintln!(
                    "{name} is ready on {node} (job {}, http://{}:{})",
                    st.job.as_deref().unwrap_or("?"),
                    st.host,
                    st.port
                ),
                None => eprintln!(
                    "{name} is ready after {:.1} s (pid {}, port {})",
                    st.ready_after_s.unwrap_or(0.0),
                    st.pid.unwrap_or(0),
                    st.port
                ),
            }
            ExitCode::SUCCESS
        }
        WaitOutcome::Ended(st) => {
            let how = st.exit_text().unwrap_or_else(|| st.state.to_string());
            match &st.failure {
                Some(why) => eprintln!("error: {name} ended before it was ready ({how}): {why}"),
                None => eprintln!("error: {name} ended before it was ready ({how})"),
            }
            if let Some(m) = &st.message {
                eprintln!("  {m}");
            }
            print_last_lines(sup, name).await;
            ExitCode::FAILURE
        }
        WaitOutcome::TimedOut(st) => {
            eprintln!(
                "error: {name} is not ready after {timeout:.0} s (still {}); stop it with `anorag-tui server stop {name}`",
                st.state
            );
            print_last_lines(sup, name).await;
            ExitCode::from(124)
        }
    }
}

async fn print_last_lines(sup: &Supervisor, name: &str) {
    if sup.is_cluster(name) {
        if let Ok(text) = sup.cluster_jobs().logs(name).await {
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- last lines of its job's log ---");
            for l in &lines[lines.len().saturating_sub(20)..] {
                eprintln!("{l}");
            }
        }
        return;
    }
    let lines = sup.log_tail(name, 20);
    if lines.is_empty() {
        return;
    }
    eprintln!(
        "--- last {} lines of {} ---",
        lines.len(),
        sup.log_path(name).display()
    );
    for l in lines {
        eprintln!("{l}");
    }
}

async fn stop(sup: &Supervisor, name: &str, timeout: Option<f64>) -> ExitCode {
    if let Err(e) = sup.profile(name) {
        if !sup.dir().server_dir(name).exists() {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let before = sup.status_async(name).await;
    if !before.is_running() {
        let how = before
            .exit_text()
            .map(|t| format!(", {t}"))
            .unwrap_or_default();
        eprintln!("{name} is not running ({}{how})", before.state);
        return ExitCode::SUCCESS;
    }
    let t0 = std::time::Instant::now();
    match sup
        .stop(name, timeout.map(|t| crate::input::duration(t.max(0.0))))
        .await
    {
        Ok(st) if st.is_running() => {
            eprintln!(
                "{name}: {}",
                st.message.as_deref().unwrap_or("stop requested")
            );
            ExitCode::SUCCESS
        }
        Ok(st) => {
            let how = match (&st.job, st.exit_text()) {
                (_, Some(t)) => t,
                (Some(_), None) => format!("{} by the cluster", st.state),
                (None, None) => "exit status unknown".into(),
            };
            let whose = match &st.job {
                Some(j) => format!("job {j} ended; the cluster stopped its processes"),
                None => "no process left".into(),
            };
            eprintln!(
                "stopped {name} in {:.1} s ({how}); {whose}",
                t0.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn logs(sup: &Supervisor, name: &str, follow: bool, lines: usize) -> ExitCode {
    if sup.is_cluster(name) {
        return cluster_logs(sup, name, follow, lines).await;
    }
    let path = sup.log_path(name);
    if sup.profile(name).is_err() && !path.exists() {
        if let Err(e) = sup.profile(name) {
            eprintln!("error: {e}");
        }
        return ExitCode::from(2);
    }
    for l in sup.log_tail(name, lines) {
        println!("{l}");
    }
    if !follow {
        return ExitCode::SUCCESS;
    }
    let mut f = LogFollower::at_end(&path);
    let mut batch = Vec::new();
    loop {
        f.poll(4 << 20, &mut batch);
        for l in batch.drain(..) {
            println!("{l}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

/// A cluster profile's log through the cluster's Jobs API: the last `lines`, then (with
/// `follow`) what the log gains, read again each second; a new job of the profile (a restart
/// from another shell) starts over with its own log.
async fn cluster_logs(sup: &Supervisor, name: &str, follow: bool, lines: usize) -> ExitCode {
    let jobs = sup.cluster_jobs();
    let mut job: Option<String> = None;
    let mut seen = 0usize;
    let mut first = true;
    loop {
        let st = sup.status_async(name).await;
        if st.job != job {
            job = st.job.clone();
            seen = 0;
        }
        let text = match &job {
            Some(id) => jobs.job_logs(name, id).await,
            None => Ok(String::new()),
        };
        match text {
            Ok(t) => {
                if t.len() < seen {
                    seen = 0;
                }
                let new = &t[crate::format::floor_char(&t, seen)..];
                let all: Vec<&str> = new.lines().collect();
                let from = if first {
                    all.len().saturating_sub(lines)
                } else {
                    0
                };
                // A line still being written is printed when it ends.
                let complete = if new.ends_with('\n') {
                    all.len()
                } else {
                    all.len().saturating_sub(1)
                };
                for l in all.iter().take(complete).skip(from) {
                    println!("{l}");
                }
                let kept: usize = all.iter().take(complete).map(|l| l.len() + 1).sum();
                seen = crate::format::floor_char(&t, seen + kept.min(new.len()));
                first = false;
            }
            Err(e) if !follow => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => eprintln!("warning: {e}; trying again"),
        }
        if !follow {
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

pub fn print_table(all: &[ServerStatus]) {
    println!(
        "{:<12} {:<8} {:<10} {:<12} {:>7} {:>6} {:>9}  {:<14} {:<20} NOTE",
        "NAME", "KIND", "STATE", "WHERE", "PID", "PORT", "UPTIME", "ROUTE", "MODEL"
    );
    for s in all {
        let note = match (s.state.is_running(), s.exit_text()) {
            (false, Some(t)) => t,
            _ if s.autostart => "autostart".into(),
            _ => String::new(),
        };
        let place = match (&s.cluster, &s.node) {
            (Some(c), Some(n)) => format!("{c}/{n}"),
            (Some(c), None) => c.clone(),
            _ => "local".into(),
        };
        let note = match (&s.cluster, s.state, &s.message) {
            (Some(_), crate::supervisor::State::Starting, Some(m)) if m.starts_with("pending") => {
                m.clone()
            }
            _ => note,
        };
        println!(
            "{:<12} {:<8} {:<10} {:<12} {:>7} {:>6} {:>9}  {:<14} {:<20} {note}",
            s.name,
            s.kind,
            s.state.as_str(),
            place,
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            s.port,
            crate::format::opt(s.uptime_s, crate::format::duration_s),
            s.route.clone().unwrap_or_else(|| "-".into()),
            s.model.clone().unwrap_or_else(|| "-".into()),
        );
    }
}
