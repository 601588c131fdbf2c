//! Process tier: the supervisor launching real child processes (this program's own `sim`,
//! shells, python), across separate invocations sharing one state directory.
use crate::common;

use anorag::config::{self, Config};
use anorag::procfs::{self, Identity};
use anorag::supervisor::{ControlError, Record, State, StateDir, Supervisor, WaitOutcome};
use common::{free_port, group_members};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

struct Env {
    dir: tempfile::TempDir,
    cfg_path: PathBuf,
    sup: Supervisor,
}

impl Env {
    /// A config with `servers:` from `servers_yaml` (indented under `servers:`).
    fn new(servers_yaml: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("llm:\n  provider: builtin\n  builtin: {{}}\nservers:\n{servers_yaml}");
        let cfg_path = dir.path().join("dashboard.yaml");
        std::fs::write(&cfg_path, &text).unwrap();
        let cfg: Config = config::load(&config::Source::File(cfg_path.clone()))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let sup = Supervisor::new(
            Arc::new(cfg),
            StateDir::new(dir.path().join("state")),
            PathBuf::from(EXE),
        );
        Env { dir, cfg_path, sup }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The CLI, as another shell would run it, on the same config and state directory.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(EXE)
            .args(["--config", self.cfg_path.to_str().unwrap()])
            .args(args)
            .env("ANORAG_STATE_DIR", self.state_dir())
            .output()
            .unwrap()
    }

    fn record(&self, name: &str) -> Record {
        self.sup.dir().read_record(name).expect("a record")
    }
}

impl Drop for Env {
    /// Nothing outlives a test, whatever it asserted.
    fn drop(&mut self) {
        for name in self.sup.dir().known_servers() {
            if let Some(r) = self.sup.dir().read_record(&name) {
                if let Some(m) = r.monitor.filter(Identity::is_alive) {
                    unsafe { libc::kill(m.pid, libc::SIGKILL) };
                }
                if let Some(pg) = r.pgid {
                    unsafe { libc::kill(-pg, libc::SIGKILL) };
                }
            }
        }
    }
}

fn sim_profile(name: &str, port: u16, extra: &str) -> String {
    format!("  {name}:\n    kind: sim\n    port: {port}\n{extra}")
}

async fn start_ready(env: &Env, name: &str) -> anorag::supervisor::ServerStatus {
    let s = env.sup.start(name).await.unwrap_or_else(|e| panic!("{e}"));
    match env
        .sup
        .wait_ready(name, &s.run_id, Duration::from_secs(30))
        .await
    {
        WaitOutcome::Ready(st) => st,
        other => panic!("{other:?}\n{}", env.sup.log_tail(name, 30).join("\n")),
    }
}

fn alive(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[tokio::test]
async fn start_to_ready_then_stop_leaves_no_process_of_the_group() {
    let port = free_port();
    let pids = tempfile::NamedTempFile::new().unwrap();
    let pids_path = pids.path().display().to_string();
    // Like vLLM, the server has helpers: two in its group, and one that left it (setsid).
    let script = format!(
        "sleep 300 & echo $! > {pids_path}; sleep 300 & echo $! >> {pids_path}; setsid sleep 300 & echo $! >> {pids_path}; exec {EXE} sim --port {port} --model m"
    );
    let yaml = format!(
        "  svc:\n    kind: command\n    command: [sh, -c, {}]\n    port: {port}\n    health_path: /health\n    stop_timeout: 5\n",
        serde_json::to_string(&script).unwrap()
    );
    let env = Env::new(&yaml);
    let st = start_ready(&env, "svc").await;
    assert_eq!(st.state, State::Ready);
    let pgid = st.pgid.unwrap();
    assert_eq!(st.pid, Some(pgid), "the server leads its own process group");
    assert_ne!(pgid, unsafe { libc::getpgrp() }, "not our group");
    let helpers: Vec<i32> = std::fs::read_to_string(pids.path())
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(helpers.len(), 3);
    assert!(helpers.iter().all(|p| alive(*p)));
    assert!(group_members(pgid).len() >= 3);

    let stopped = env.sup.stop("svc", None).await.unwrap();
    assert_eq!(stopped.state, State::Exited);
    assert_eq!(stopped.exit_code, Some(0));
    assert!(
        group_members(pgid).is_empty(),
        "every process of the group is gone"
    );
    for p in helpers {
        assert!(!alive(p), "helper {p} outlived the server");
    }
    let log = env.sup.log_tail("svc", 50).join("\n");
    assert!(
        log.contains("stop requested: SIGTERM to process group"),
        "{log}"
    );
    assert!(log.contains("server exited (exit code 0)"), "{log}");
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let port = free_port();
    let py = format!(
        "import signal,http.server,os\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nos.chdir('/')\nhttp.server.HTTPServer(('127.0.0.1',{port}),http.server.SimpleHTTPRequestHandler).serve_forever()"
    );
    let yaml = format!(
        "  stubborn:\n    kind: command\n    command: [python3, -c, {}]\n    port: {port}\n    health_path: /\n    stop_timeout: 1.5\n",
        serde_json::to_string(&py).unwrap()
    );
    let env = Env::new(&yaml);
    let st = start_ready(&env, "stubborn").await;
    let pgid = st.pgid.unwrap();
    let t0 = Instant::now();
    let out = env.sup.stop("stubborn", None).await.unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "killed before the grace period ended: {took:?}"
    );
    assert_eq!(
        out.state,
        State::Exited,
        "asked to stop: exited, not crashed"
    );
    assert_eq!(out.signal, Some(libc::SIGKILL));
    assert!(group_members(pgid).is_empty());
    assert!(env
        .sup
        .log_tail("stubborn", 20)
        .join("\n")
        .contains("sending SIGKILL"));
}

#[tokio::test]
async fn kill_9_from_outside_is_seen_as_a_crash_by_a_later_invocation() {
    let port = free_port();
    let env = Env::new(&sim_profile("demo", port, ""));
    let out = env.cli(&["server", "start", "demo", "--wait", "--timeout", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = |env: &Env| -> serde_json::Value {
        let o = env.cli(&["server", "status", "demo", "--json"]);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let before = status(&env);
    assert_eq!(before["state"], "ready");
    let pid = before["pid"].as_i64().unwrap() as i32;
    assert_eq!(before["pgid"].as_i64(), Some(pid as i64));
    assert!(before["uptime_s"].as_f64().is_some());
    assert!(before["started_at"].as_str().unwrap().ends_with('Z'));

    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || status(&env)["state"]
        == "crashed"));
    let after = status(&env);
    assert_eq!(after["signal"], 9);
    assert_eq!(after["exit_code"], serde_json::Value::Null);
    assert_eq!(after["uptime_s"], serde_json::Value::Null);
    // The monitor that kept it has gone too; the record remains for anyone who asks.
    assert!(wait_until(Duration::from_secs(5), || !env
        .sup
        .dir()
        .monitor_alive("demo")));
    let out = env.cli(&["server", "status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let human = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        human.contains("crashed") && human.contains("signal 9 (SIGKILL)"),
        "{human}"
    );
}

#[tokio::test]
async fn a_reused_pid_is_not_mistaken_for_the_server() {
    let port = free_port();
    let env = Env::new(&sim_profile("demo", port, ""));
    // An unrelated process that happens to hold the pid the record names.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let real = Identity::of(other.id() as i32).unwrap();
    env.sup.dir().ensure("demo").unwrap();
    let rec = Record {
        name: "demo".into(),
        run_id: "old".into(),
        state: State::Ready,
        kind: "sim".into(),
        monitor: Some(Identity {
            start_ticks: real.start_ticks + 7,
            ..real.clone()
        }),
        server: Some(Identity {
            start_ticks: real.start_ticks + 7,
            ..real.clone()
        }),
        pgid: Some(real.pid),
        host: "127.0.0.1".into(),
        port,
        started_at: Some(1.0),
        ready_at: Some(2.0),
        updated_at: 2.0,
        ..Record::default()
    };
    env.sup.dir().write_record(&rec).unwrap();
    let st = env.sup.status("demo");
    assert_eq!(
        st.state,
        State::Crashed,
        "the live pid belongs to someone else"
    );
    assert!(st.message.unwrap().contains("without a record"));
    let stopped = env
        .sup
        .stop("demo", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(!stopped.is_running());
    assert!(alive(real.pid), "stop must not signal a stranger");
    // And a fresh start works over the stale record.
    start_ready(&env, "demo").await;
    env.sup.stop("demo", None).await.unwrap();
    other.kill().unwrap();
    other.wait().unwrap();
}

#[tokio::test]
async fn a_busy_port_is_a_clear_error_and_nothing_starts() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let env = Env::new(&sim_profile("demo", port, ""));
    let e = env.sup.start("demo").await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ControlError::Preflight(_)), "{msg}");
    assert!(
        msg.contains(&format!(
            "server `demo`: port {port} on 127.0.0.1 is already in use by pid {}",
            std::process::id()
        )),
        "{msg}"
    );
    assert!(
        env.sup.dir().read_record("demo").is_none(),
        "nothing was started"
    );
    assert!(!env.sup.dir().monitor_alive("demo"));
    let out = env.cli(&["server", "start", "demo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
}

#[tokio::test]
async fn unknown_executables_are_clear_errors() {
    let port = free_port();
    let env = Env::new(&format!(
        "  abs:\n    kind: vllm\n    executable: /nonexistent/bin/vllm\n    model: m\n    port: {port}\n  onpath:\n    kind: vllm\n    executable: no-such-vllm-3f9a\n    model: m\n    port: {port}\n  cmd:\n    kind: command\n    command: [definitely-not-a-server-3f9a]\n    port: {port}\n  missing_model:\n    kind: vllm\n    executable: {EXE}\n    model: ./models/none-here\n    port: {port}\n"
    ));
    let cases = [
        ("abs", "executable `/nonexistent/bin/vllm` not found (install vLLM, or set servers.abs.executable"),
        ("onpath", "executable `no-such-vllm-3f9a` not found on PATH"),
        ("cmd", "executable `definitely-not-a-server-3f9a` not found on PATH (servers.cmd.command)"),
        ("missing_model", "model path `"),
    ];
    for (name, want) in cases {
        let e = env.sup.start(name).await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("server `{name}`: ")) && e.contains(want),
            "{e}"
        );
        assert!(env.sup.dir().read_record(name).is_none());
    }
    let unknown = env.sup.start("nope").await.unwrap_err().to_string();
    assert!(unknown.contains("no server profile `nope`"), "{unknown}");
}

#[tokio::test]
async fn the_crash_loop_guard_stops_restarting() {
    let port = free_port();
    let env = Env::new(&format!(
        "  flaky:\n    kind: command\n    command: [sh, -c, 'echo boom; exit 3']\n    port: {port}\n    restart: on-failure\n    max_restarts: 2\n    restart_window: 60\n"
    ));
    env.sup.start("flaky").await.unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || !env
            .sup
            .dir()
            .monitor_alive("flaky")),
        "the monitor gave up"
    );
    let r = env.record("flaky");
    assert_eq!(r.state, State::Crashed);
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.restarts, 2);
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .contains("crash loop: 2 restarts within 60 s"),
        "{:?}",
        r.message
    );
    let log = env.sup.log_tail("flaky", 50).join("\n");
    let runs = log.lines().filter(|l| *l == "boom").count();
    assert_eq!(runs, 3, "first run + 2 restarts:\n{log}");
}

#[tokio::test]
async fn a_server_that_exits_before_ready_fails_start_wait_with_its_last_lines() {
    let port = free_port();
    let env = Env::new(&format!(
        "  broken:\n    kind: command\n    command: [sh, -c, 'echo loading weights; echo \"CUDA out of memory\" >&2; exit 1']\n    port: {port}\n"
    ));
    let out = env.cli(&["server", "start", "broken", "--wait", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken ended before it was ready (exit code 1)"),
        "{err}"
    );
    assert!(
        err.contains("CUDA out of memory"),
        "the last log lines are shown: {err}"
    );
}

#[tokio::test]
async fn start_wait_times_out_with_a_non_zero_exit_and_the_server_stays_managed() {
    let port = free_port();
    let env = Env::new(&format!(
        "  slow:\n    kind: command\n    command: [sleep, '300']\n    port: {port}\n    stop_timeout: 2\n"
    ));
    let out = env.cli(&["server", "start", "slow", "--wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not ready after 1 s (still starting)")
    );
    assert_eq!(env.sup.status("slow").state, State::Starting);
    let out = env.cli(&["server", "stop", "slow"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = env.sup.status("slow");
    assert_eq!(st.state, State::Exited);
    assert_eq!(st.signal, Some(libc::SIGTERM));
}

#[tokio::test]
async fn the_api_key_reaches_the_server_by_environment_only() {
    let port = free_port();
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "echo \"key=$VLLM_API_KEY gpus=$CUDA_VISIBLE_DEVICES args=$*\" > {}; exec {EXE} sim --port {port}",
        out_file.path().display()
    );
    let env = Env::new(&format!(
        "  keyed:\n    kind: command\n    command: [sh, -c, {}, sh, --flag]\n    port: {port}\n    health_path: /health\n    api_key_env: ANORAG_TEST_KEY_7\n    env: {{CUDA_VISIBLE_DEVICES: \"1,0\"}}\n",
        serde_json::to_string(&script).unwrap()
    ));
    // Missing variable: refused rather than starting an unauthenticated server.
    std::env::remove_var("ANORAG_TEST_KEY_7");
    let e = env.sup.start("keyed").await.unwrap_err().to_string();
    assert!(e.contains("`ANORAG_TEST_KEY_7`, which is not set"), "{e}");
    std::env::set_var("ANORAG_TEST_KEY_7", "sk-secret-value-123");
    let st = start_ready(&env, "keyed").await;
    let seen = std::fs::read_to_string(out_file.path()).unwrap();
    assert_eq!(seen.trim(), "key=sk-secret-value-123 gpus=1,0 args=--flag");
    let cmdline = procfs::cmdline(st.pid.unwrap()).unwrap();
    assert!(!cmdline.contains("sk-secret"), "{cmdline}");
    for f in [
        env.sup.dir().record_path("keyed"),
        env.sup.dir().launch_path("keyed"),
        env.sup.log_path("keyed"),
    ] {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(!text.contains("sk-secret"), "{} holds the key", f.display());
    }
    env.sup.stop("keyed", None).await.unwrap();
}

#[tokio::test]
async fn logs_from_another_invocation_and_restart() {
    let port = free_port();
    let env = Env::new(&sim_profile("demo", port, ""));
    let first = start_ready(&env, "demo").await;
    let out = env.cli(&["server", "logs", "demo", "--lines", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ready: http://127.0.0.1:"), "{text}");
    let out = env.cli(&["server", "restart", "demo", "--wait", "--timeout", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = env.sup.status("demo");
    assert_eq!(second.state, State::Ready);
    assert_ne!(second.pid, first.pid);
    assert!(!alive(first.pid.unwrap()));
    let list: serde_json::Value =
        serde_json::from_slice(&env.cli(&["server", "list", "--json"]).stdout)
            .expect("list --json");
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["state"], "ready");
    assert_eq!(env.cli(&["server", "stop", "demo"]).status.code(), Some(0));
    let again = env.cli(&["server", "stop", "demo"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("demo is not running (exited, exit code 0)"));
}

#[test]
fn state_dir_default_follows_the_environment() {
    let root = anorag::supervisor::statedir::default_root().unwrap();
    if let Ok(d) = std::env::var("ANORAG_STATE_DIR") {
        assert_eq!(root, Path::new(&d));
    } else {
        assert!(root.ends_with("anorag-tui"));
    }
}

mod engine {
    use super::*;
    use anorag::supervisor::engine::{self, Op, SupCommand, SupEvent};
    use tokio::sync::mpsc;

    /// Keeps every event, so a test can wait for several in any order of arrival.
    struct Collector {
        rx: mpsc::Receiver<SupEvent>,
        seen: Vec<SupEvent>,
    }

    impl Collector {
        async fn until(
            &mut self,
            limit: Duration,
            what: &str,
            f: impl Fn(&SupEvent) -> bool,
        ) -> SupEvent {
            let deadline = tokio::time::Instant::now() + limit;
            let mut from = 0;
            loop {
                if let Some(i) = self.seen[from..].iter().position(&f) {
                    return self.seen.remove(from + i);
                }
                from = self.seen.len();
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(ev)) => self.seen.push(ev),
                    Ok(None) => panic!("engine ended while waiting for {what}"),
                    Err(_) => panic!("no {what} within {limit:?}; saw {:#?}", self.seen),
                }
            }
        }
    }

    fn status_is(e: &SupEvent, name: &str, state: State) -> bool {
        matches!(e, SupEvent::Status(s) if s.name == name && s.state == state)
    }

    #[tokio::test]
    async fn the_engine_reports_states_logs_and_results_and_sees_other_shells() {
        let (p1, p2) = (free_port(), free_port());
        let env = Env::new(&format!(
            "{}{}",
            sim_profile("a", p1, ""),
            sim_profile("b", p2, "")
        ));
        let (tx, rx) = mpsc::channel(256);
        let h = engine::spawn(env.sup.clone(), tx);
        let mut c = Collector {
            rx,
            seen: Vec::new(),
        };
        let d = Duration::from_secs(10);
        c.until(d, "a stopped", |e| status_is(e, "a", State::Stopped))
            .await;
        c.until(d, "b stopped", |e| status_is(e, "b", State::Stopped))
            .await;

        assert!(h.send(SupCommand::Run(Op::Start, "a".into())));
        c.until(
            d,
            "start done",
            |e| matches!(e, SupEvent::Done { name, op: Op::Start, result: Ok(_) } if name == "a"),
        )
        .await;
        let ready = c
            .until(d, "a ready", |e| status_is(e, "a", State::Ready))
            .await;
        // What the engine read is what the samplers attribute GPU memory by: no second
        // reader of the records.
        let SupEvent::Status(ready) = ready else {
            unreachable!()
        };
        // (It publishes right after sending the statuses of a pass: wait for it.)
        let want = vec![("a".to_string(), ready.pid.unwrap())];
        let deadline = std::time::Instant::now() + d;
        while env.sup.seen().running() != Some(want.clone()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the engine did not publish {want:?}: {:?}",
                env.sup.seen().running()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.until(d, "a's ready line", |e| matches!(e, SupEvent::Logs { name, lines, .. } if name == "a" && lines.iter().any(|l| l.contains("ready:")))).await;

        // Started from another shell: the engine sees it all the same.
        assert!(env.cli(&["server", "start", "b"]).status.success());
        let SupEvent::Status(b) = c
            .until(d, "b ready", |e| status_is(e, "b", State::Ready))
            .await
        else {
            unreachable!()
        };

        // A crash is seen at once.
        let t0 = Instant::now();
        unsafe { libc::kill(b.pid.unwrap(), libc::SIGKILL) };
        c.until(d, "b crashed", |e| matches!(e, SupEvent::Status(s) if s.name == "b" && s.state == State::Crashed && s.signal == Some(9))).await;
        eprintln!("crash seen after {:?}", t0.elapsed());

        // A second operation on a busy server is refused, not queued behind it.
        assert!(h.send(SupCommand::Run(Op::Stop, "a".into())));
        assert!(h.send(SupCommand::Run(Op::Stop, "a".into())));
        c.until(d, "refusal", |e| matches!(e, SupEvent::Done { name, result: Err(m), .. } if name == "a" && m.contains("still running"))).await;
        c.until(d, "stop done", |e| matches!(e, SupEvent::Done { name, result: Ok(m), .. } if name == "a" && m.contains("stopped (exit code 0)"))).await;
        c.until(d, "a exited", |e| status_is(e, "a", State::Exited))
            .await;
    }

    #[tokio::test]
    async fn log_lines_that_do_not_fit_are_counted_not_lost_silently() {
        let port = free_port();
        let script = format!("i=0; while [ $i -lt 30000 ]; do echo \"line $i\"; i=$((i+1)); done; exec {EXE} sim --port {port}");
        let env = Env::new(&format!(
            "  chatty:\n    kind: command\n    command: [sh, -c, {}]\n    port: {port}\n    health_path: /health\n",
            serde_json::to_string(&script).unwrap()
        ));
        // The engine runs before the server writes anything, with room for two events and
        // nobody reading while the flood comes in.
        let (tx, mut rx) = mpsc::channel(2);
        let _h = engine::spawn(env.sup.clone(), tx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        start_ready(&env, "chatty").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (mut delivered, mut lost) = (0u64, 0u64);
        loop {
            match tokio::time::timeout(Duration::from_millis(800), rx.recv()).await {
                Ok(Some(SupEvent::Logs { lines, lost: l, .. })) => {
                    delivered += lines.len() as u64;
                    lost += l;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        let in_file = std::fs::read_to_string(env.sup.log_path("chatty"))
            .unwrap()
            .lines()
            .count() as u64;
        assert!(
            lost > 0,
            "the channel was full, so some batches could not be delivered"
        );
        assert_eq!(
            delivered + lost,
            in_file,
            "every line is delivered or counted as lost"
        );
        env.sup.stop("chatty", None).await.unwrap();
    }

    #[tokio::test]
    async fn log_bytes_waiting_for_a_stalled_consumer_are_bounded() {
        let port = free_port();
        // Once it is ready and followed: 20,000 lines of 2,000 bytes (40 MB), more than the
        // 16 MiB the channel may hold.
        let script = format!("{EXE} sim --port {port} & sleep 1.5; head -c 40000000 /dev/zero | tr '\\0' x | fold -w 1999; wait");
        let env = Env::new(&format!(
            "  flood:\n    kind: command\n    command: [sh, -c, {}]\n    port: {port}\n    health_path: /health\n",
            serde_json::to_string(&script).unwrap()
        ));
        // Room for many events, and nobody reading while the flood comes in.
        let (tx, mut rx) = mpsc::channel(100_000);
        let h = engine::spawn(env.sup.clone(), tx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        start_ready(&env, "flood").await;
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let (mut bytes, mut lost, mut delivered) = (0usize, 0u64, 0u64);
        let mut taken = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            if let SupEvent::Logs { lines, lost: l, .. } = &ev {
                bytes += lines.iter().map(|x| x.len() + 1).sum::<usize>();
                delivered += lines.len() as u64;
                lost += l;
            }
            taken.push(ev);
        }
        assert!(
            bytes <= engine::QUEUED_LOG_BYTES,
            "{bytes} bytes queued, cap {}",
            engine::QUEUED_LOG_BYTES
        );
        // The consumer catches up: room again, and the next batch says what did not fit.
        for ev in &taken {
            h.taken(ev);
        }
        let d = Instant::now() + Duration::from_secs(10);
        while lost == 0 && Instant::now() < d {
            if let Ok(Some(SupEvent::Logs { lost: l, .. })) =
                tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
            {
                lost += l;
            }
        }
        assert!(
            delivered > 0 && lost > 0,
            "{delivered} delivered, {lost} lost"
        );
        drop(h);
        env.sup.stop("flood", None).await.unwrap();
    }
}

#[tokio::test]
async fn ready_turns_unhealthy_after_failed_probes_and_back() {
    let port = free_port();
    let www = tempfile::tempdir().unwrap();
    let ok = www.path().join("ok");
    std::fs::write(&ok, "fine").unwrap();
    let py = format!(
        "import http.server,os\nos.chdir({:?})\nhttp.server.HTTPServer(('127.0.0.1',{port}),http.server.SimpleHTTPRequestHandler).serve_forever()",
        www.path().display().to_string()
    );
    let env = Env::new(&format!(
        "  files:\n    kind: command\n    command: [python3, -c, {}]\n    port: {port}\n    health_path: /ok\n    stop_timeout: 2\n",
        serde_json::to_string(&py).unwrap()
    ));
    start_ready(&env, "files").await;
    std::fs::remove_file(&ok).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || env.sup.status("files").state
            == State::Unhealthy),
        "three failed probes make it unhealthy"
    );
    let st = env.sup.status("files");
    assert!(st.message.unwrap().contains("failed 3 probes in a row"));
    std::fs::write(&ok, "fine").unwrap();
    assert!(wait_until(Duration::from_secs(10), || env
        .sup
        .status("files")
        .state
        == State::Ready));
    assert!(env
        .sup
        .log_tail("files", 50)
        .join("\n")
        .contains("healthy again"));
    env.sup.stop("files", None).await.unwrap();
}

/// A `${VAR}` in a profile's `env:` reaches the server, but no file of ours holds its value;
/// every file in the state directory is private.
#[test]
fn env_values_from_variables_reach_the_server_but_no_file() {
    use std::os::unix::fs::PermissionsExt;
    let port = free_port();
    let secret = "hf_s3cr3t_4711";
    let env = Env::new(&format!(
        "  s:\n    kind: sim\n    port: {port}\n    env: {{HF_TOKEN: \"${{ANORAG_TEST_TOKEN:-none}}\", PLAIN: visible}}\n"
    ));
    let out = Command::new(EXE)
        .args(["--config", env.cfg_path.to_str().unwrap()])
        .args(["server", "start", "s", "--wait", "--timeout", "60"])
        .env("ANORAG_STATE_DIR", env.state_dir())
        .env("ANORAG_TEST_TOKEN", secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid = env.record("s").server.unwrap().pid;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains(&format!("HF_TOKEN={secret}")),
        "the server has it"
    );
    assert!(environ.contains("PLAIN=visible"));
    let mut files = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push(p.clone());
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    walk(&env.state_dir(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("launch.json")));
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        if f.is_dir() {
            assert_eq!(mode, 0o700, "{}", f.display());
        } else {
            assert_eq!(mode, 0o600, "{}", f.display());
            let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            assert!(!text.contains(secret), "{} holds the value", f.display());
        }
    }
    let launch = std::fs::read_to_string(env.state_dir().join("servers/s/launch.json")).unwrap();
    assert!(launch.contains("${ANORAG_TEST_TOKEN}"), "{launch}");
    let stop = env.cli(&["server", "stop", "s"]);
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
}

/// `status --watch` with a 30 s interval shows a `kill -9` as crashed long before its next
/// interval: the state directory's notifications deliver it, not a timer.
#[test]
fn status_watch_hears_of_a_crash_without_waiting_for_its_interval() {
    use std::io::BufRead;
    let port = free_port();
    let env = Env::new(&format!("  demo:\n    kind: sim\n    port: {port}\n"));
    let out = env.cli(&["server", "start", "demo", "--wait", "--timeout", "60"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid = env.record("demo").server.unwrap().pid;
    let mut watch = Command::new(EXE)
        .args(["--config", env.cfg_path.to_str().unwrap()])
        .args(["status", "--watch", "--json", "--interval", "30"])
        .env("ANORAG_STATE_DIR", env.state_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let state_of = |line: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let s = v["servers"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "demo")?
            .clone();
        Some(s["state"].as_str()?.to_string())
    };
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a first view");
    assert_eq!(state_of(&first).as_deref(), Some("ready"), "{first}");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // Well inside the 30 s interval: only a notification can have brought it.
    let next = rx.recv_timeout(Duration::from_secs(20));
    let _ = watch.kill();
    let _ = watch.wait();
    let next = next.expect("a view after the crash, before the interval");
    assert_eq!(state_of(&next).as_deref(), Some("crashed"), "{next}");
}
