//! Real-Ray tier: a cluster of three nodes (head, node2, node3) from `scripts/ray-cluster`, set up
//! by scripts/test (ANORAG_RAY_ADDRESS). Everything runs in one test, in series, against that
//! one cluster: `cluster --json` sees both nodes, a job pinned to node2 runs there, is found by
//! its metadata, and stops; a job that asks for GPUs the cluster lacks waits, saying why.
use crate::common;

use anorag::cluster::{JobSpec, JobStatus, RayClient};
use anorag::config::{ClusterConfig, ClusterKind};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn address() -> Option<String> {
    // scripts/test runs this tier in a phase of its own, with the cluster up only then (so
    // that three idle Ray nodes do not take CPU from the real-vLLM tier).
    if std::env::var("ANORAG_RAY_LATER").as_deref() == Ok("1") {
        eprintln!("real_ray: runs in scripts/test's Ray phase");
        return None;
    }
    match std::env::var("ANORAG_RAY_ADDRESS") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            common::skipped(
                "real_ray",
                "ANORAG_RAY_ADDRESS is unset; run scripts/test, or `eval \"$(../shared/tools/ray/ensure.sh)\"; eval \"$(scripts/ray-cluster up 3)\"`",
            );
            None
        }
    }
}

async fn until(
    c: &RayClient,
    id: &str,
    what: &str,
    ok: impl Fn(&anorag::cluster::ClusterJob) -> bool,
) -> anorag::cluster::ClusterJob {
    // A guard against a hang, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(j) = c.job(id).await {
            if ok(&j) {
                return j;
            }
            assert!(Instant::now() < deadline, "{id}: never {what}: {j:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ray() {
    let Some(addr) = address() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dashboard.yaml");
    std::fs::write(
        &cfg,
        format!("llm:\n  provider: builtin\n  builtin: {{}}\nclusters:\n  farm: {{kind: ray, address: \"{addr}\", host: 127.0.0.1}}\n"),
    )
    .unwrap();

    // The CLI sees both nodes, the head marked, node2 by its resource.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args(["--config", cfg.to_str().unwrap(), "cluster", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let view = &v["clusters"][0];
    assert_eq!(view["cluster"], "farm");
    assert!(
        view["version"].as_str().unwrap().starts_with("2."),
        "{view}"
    );
    let nodes = view["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 2, "{view}");
    assert_eq!(nodes.iter().filter(|n| n["head"] == true).count(), 1);
    let node2 = nodes
        .iter()
        .find(|n| n["resources"]["node2"].is_array())
        .expect("a node with the node2 resource");
    let node2_id = node2["id"].as_str().unwrap().to_string();

    // The GPU view has every node as a source (none of them has a GPU here).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args(["--config", cfg.to_str().unwrap(), "gpu", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources: Vec<&str> = g["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"farm/head") && sources.contains(&"farm/node2"),
        "{sources:?}"
    );

    // A job pinned to node2 runs there and is found again by its metadata.
    let c = RayClient::new(
        "farm",
        &ClusterConfig {
            kind: ClusterKind::Ray,
            address: addr.clone(),
            token_env: None,
            host: Some("127.0.0.1".into()),
        },
    )
    .unwrap();
    let id = format!("anorag-test-{}", std::process::id());
    let meta = BTreeMap::from([("anorag.profile".to_string(), "pinned".to_string())]);
    c.submit(&JobSpec {
        submission_id: id.clone(),
        entrypoint: "echo started; sleep 300".into(),
        num_cpus: 0.5,
        num_gpus: 0.0,
        resources: BTreeMap::from([("node2".to_string(), 1.0)]),
        env: BTreeMap::from([("ANORAG_TEST".to_string(), "1".to_string())]),
        metadata: meta,
    })
    .await
    .unwrap();
    let j = until(&c, &id, "running", |j| j.status == JobStatus::Running).await;
    assert_eq!(j.node_id.as_deref(), Some(node2_id.as_str()));
    let ours = c.jobs().await.unwrap();
    assert!(ours
        .iter()
        .any(|j| j.id == id && j.profile() == Some("pinned")));
    assert!(c.stop(&id).await.unwrap());
    let j = until(&c, &id, "stopped", |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Stopped, "{j:?}");

    // More GPUs than the cluster has: pending, and Ray says it waits for resources.
    let big = format!("anorag-test-big-{}", std::process::id());
    c.submit(&JobSpec {
        submission_id: big.clone(),
        entrypoint: "true".into(),
        num_cpus: 0.1,
        num_gpus: 2.0,
        resources: BTreeMap::new(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
    })
    .await
    .unwrap();
    // Ray says why once its job supervisor has looked for resources: how soon depends on the
    // cluster's load, so the test waits for the reason instead of a fixed moment.
    let j = until(&c, &big, "said it waits for resources", |j| {
        j.message
            .as_deref()
            .is_some_and(|m| m.contains("waiting for resources"))
            || j.status != JobStatus::Pending
    })
    .await;
    assert_eq!(j.status, JobStatus::Pending, "{j:?}");
    c.stop(&big).await.unwrap();

    fleet(&addr, &node2_id).await;
}

/// Runs `anorag-tui --config CFG ARGS` as another shell would.
fn cli(f: &Fleet, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .arg("--config")
        .arg(&f.cfg)
        .args(args)
        .env("ANORAG_STATE_DIR", f.dir.path().join("state"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Processes on this machine (every node is this machine) whose environment names `job`:
/// (pid, command line). Ray's own helpers for the job carry the job's runtime env too.
fn job_processes(job: &str) -> Vec<(i32, String)> {
    let want = format!("ANORAG_JOB={job}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = text(&cmd).replace('\0', " ");
            if !cmd.trim().is_empty() {
                out.push((pid, cmd));
            }
        }
    }
    out
}

/// Ray's own processes for a job (its supervisor actor, the watcher that kills the job's
/// group if the actor dies, that watcher's `sleep`): gone when Ray is done with the job.
fn rays_own(cmd: &str) -> bool {
    cmd.starts_with("ray::") || cmd.contains("while kill -s 0") || cmd.starts_with("sleep ")
}

/// Waits (a guard against a hang, not a timing assertion) until nothing of `job` is left.
fn nothing_left(job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = job_processes(job);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "job {job} left {left:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn status_json(f: &Fleet, name: &str) -> serde_json::Value {
    let out = cli(f, &["server", "status", name, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn until_state(
    f: &Fleet,
    name: &str,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = status_json(f, name);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{name}: never {what}: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

struct Fleet {
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
}

/// Launch profiles as Ray jobs, every step from a separate invocation as from any shell: a
/// simulator pinned to node2 (ready, chat through its route, its log, the job on node2 in
/// `cluster --json`, stop with nothing left), `kill -9` of its process seen as crashed, a job
/// asking for GPUs the cluster lacks (pending, with the reason), a bad entrypoint (an error
/// naming the profile), the real vLLM as a job on node2, and the cluster stopped under a
/// running console and `status --watch`.
async fn fleet(addr: &str, node2_id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dashboard.yaml");
    let (p_sim, p_big, p_bad, p_vllm) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let vllm = common::RealVllmEnv::from_env("real_ray_vllm_job");
    let vllm_profile = vllm.as_ref().map(|v| format!(
        "  tiny:\n    kind: vllm\n    executable: {}\n    model: {}\n    served_model_name: qwen2_5_0_5b\n    port: {p_vllm}\n    max_model_len: 2048\n    dtype: float32\n    enforce_eager: true\n    route: real\n    cluster: farm\n    resources: {{node2: 1}}\n    num_cpus: 0.5\n    stop_timeout: 20\n",
        v.bin, v.model
    )).unwrap_or_default();
    std::fs::write(
        &cfg,
        format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      fleet: {{base_url: \"http://127.0.0.1:{p_sim}/v1\", model: fleet-sim}}\n      real: {{base_url: \"http://127.0.0.1:{p_vllm}/v1\", model: qwen2_5_0_5b}}\n    default_route: fleet\n\
clusters:\n  farm: {{kind: ray, address: \"{addr}\", host: 127.0.0.1}}\n\
servers:\n  simjob:\n    kind: sim\n    model: fleet-sim\n    port: {p_sim}\n    route: fleet\n    cluster: farm\n    resources: {{node2: 1}}\n    num_cpus: 0.5\n    env: {{GREETING: \"it's here\"}}\n  \
big:\n    kind: vllm\n    model: some/model\n    port: {p_big}\n    cluster: farm\n    tensor_parallel_size: 2\n  \
broken:\n    kind: command\n    command: [/nonexistent/anorag-no-such-server]\n    port: {p_bad}\n    cluster: farm\n    resources: {{node2: 1}}\n    num_cpus: 0.5\n  \
flaky:\n    kind: command\n    command: [sh, -c, 'echo up; exit 3']\n    port: {p_bad}\n    cluster: farm\n    resources: {{node2: 1}}\n    num_cpus: 0.5\n    restart: on-failure\n    max_restarts: 1\n    restart_window: 60\n{vllm_profile}"
        ),
    )
    .unwrap();
    let f = Fleet { dir, cfg };

    // Ready on node2; a chat goes through its route; its log comes through the Jobs API.
    let out = cli(
        &f,
        &["server", "start", "simjob", "--wait", "--timeout", "120"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stderr).contains("is ready on node2"), "{out:?}");
    let st = status_json(&f, "simjob");
    assert_eq!(st["state"], "ready", "{st}");
    assert_eq!(st["node"], "node2", "{st}");
    let job = st["job"].as_str().unwrap().to_string();
    let out = cli(&f, &["chat", "--route", "fleet", "hello fleet"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains("served by route fleet"),
        "{out:?}"
    );
    assert!(text(&out.stdout).contains("built-in simulator"), "{out:?}");
    let out = cli(&f, &["server", "logs", "simjob", "-n", "20"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).contains("flavour serving `fleet-sim`"),
        "{out:?}"
    );
    let out = cli(&f, &["cluster", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let j = v["clusters"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("job {job} not in {v}"));
    assert_eq!(j["node_id"], node2_id, "{j}");
    assert_eq!(j["status"], "RUNNING", "{j}");
    assert_eq!(j["metadata"]["anorag.profile"], "simjob", "{j}");
    // The runtime env holds the non-secret env only.
    let server = job_processes(&job)
        .into_iter()
        .find(|(_, c)| c.contains(" sim --flavor"))
        .unwrap_or_else(|| panic!("no server process for {job}: {:?}", job_processes(&job)));
    let env = std::fs::read(format!("/proc/{}/environ", server.0)).unwrap();
    assert!(text(&env).contains("GREETING=it's here"));

    // Stop: the job ends and none of the server's processes is left.
    let out = cli(&f, &["server", "stop", "simjob"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let left: Vec<_> = job_processes(&job)
        .into_iter()
        .filter(|(_, c)| !rays_own(c))
        .collect();
    assert!(
        left.is_empty(),
        "server processes left after stop: {left:?}"
    );
    nothing_left(&job);
    assert_eq!(status_json(&f, "simjob")["state"], "exited");

    // `kill -9` of the job's process: crashed, with Ray's message and the signal, as any
    // other invocation sees it.
    let out = cli(
        &f,
        &["server", "start", "simjob", "--wait", "--timeout", "120"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let job = status_json(&f, "simjob")["job"]
        .as_str()
        .unwrap()
        .to_string();
    let (pid, _) = job_processes(&job)
        .into_iter()
        .find(|(_, c)| c.contains(" sim --flavor"))
        .unwrap();
    // A server that stops answering while its job runs (SIGSTOP) reads unhealthy from a
    // fresh shell at once, not starting: its job's log shows it came up.
    // SAFETY: a pid just read from /proc whose environment names our job.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let st = status_json(&f, "simjob");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(st["state"], "unhealthy", "{st}");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let st = until_state(&f, "simjob", "crashed", |v| v["state"] == "crashed");
    assert_eq!(st["signal"], 9, "{st}");
    assert!(
        st["message"].as_str().unwrap().contains("exit code -9"),
        "{st}"
    );
    nothing_left(&job);

    // More GPUs than the cluster has: pending, saying why; stop is accepted.
    let out = cli(&f, &["server", "start", "big"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let st = status_json(&f, "big");
    assert_eq!(st["state"], "starting", "{st}");
    assert_eq!(
        st["message"], "pending: needs 2 GPUs, the cluster has 0 free",
        "{st}"
    );
    let out = cli(&f, &["server", "status"]);
    assert!(
        text(&out.stdout).contains("pending: needs 2 GPUs"),
        "{out:?}"
    );
    let out = cli(&f, &["server", "stop", "big"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains("stop requested while pending"),
        "{out:?}"
    );

    // A bad entrypoint: the job fails at once, and the error names the profile and the code.
    let out = cli(
        &f,
        &["server", "start", "broken", "--wait", "--timeout", "120"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("broken ended before it was ready (exit code 127)"),
        "{err}"
    );
    assert!(err.contains("not found"), "the job's log says why: {err}");

    // restart: on-failure restarts on the node, under the crash-loop guard, and the job ends
    // crashed once the guard gives up; the log says each step.
    let out = cli(&f, &["server", "start", "flaky"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let st = until_state(&f, "flaky", "crashed", |v| v["state"] == "crashed");
    assert_eq!(st["exit_code"], 3, "{st}");
    let out = cli(&f, &["server", "logs", "flaky"]);
    let log = text(&out.stdout);
    assert_eq!(log.matches("up\n").count(), 2, "{log}");
    assert!(
        log.contains("[anorag] restarting in 1 s after exit code 3 (1/1 within 60 s)"),
        "{log}"
    );
    assert!(
        log.contains("[anorag] crash loop: 1 restarts within 60 s"),
        "{log}"
    );

    if let Some(_v) = vllm {
        real_vllm_job(&f, p_vllm);
    }

    unreachable_head(&f).await;
}

/// The real vLLM as a job on node2: ready, a streamed chat through its route, and stop with
/// nothing left (vLLM's engine children included).
fn real_vllm_job(f: &Fleet, port: u16) {
    let t0 = Instant::now();
    let out = cli(
        f,
        &["server", "start", "tiny", "--wait", "--timeout", "400"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    eprintln!(
        "[real-ray] vLLM ready on node2 after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let st = status_json(f, "tiny");
    assert_eq!(
        (st["state"].as_str(), st["node"].as_str()),
        (Some("ready"), Some("node2")),
        "{st}"
    );
    let job = st["job"].as_str().unwrap().to_string();
    let procs = job_processes(&job);
    assert!(
        procs.iter().filter(|(_, c)| !rays_own(c)).count() >= 2,
        "vLLM's processes: {procs:?}"
    );
    let out = cli(
        f,
        &["chat", "--route", "real", "--max-tokens", "16", "say hi"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("served by route real") && err.contains("TTFT"),
        "{err}"
    );
    assert!(err.contains("tokens out"), "{err}");
    let out = cli(f, &["server", "stop", "tiny"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let left: Vec<_> = job_processes(&job)
        .into_iter()
        .filter(|(_, c)| !rays_own(c))
        .collect();
    assert!(left.is_empty(), "vLLM processes left after stop: {left:?}");
    nothing_left(&job);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
}

/// The cluster stopped under `status --watch` and a running console: both say unreachable,
/// neither hangs nor panics. Stops the cluster, so it runs last, and only on a cluster that
/// scripts/test started for the tests (ANORAG_RAY_DISPOSABLE=1).
async fn unreachable_head(f: &Fleet) {
    if std::env::var("ANORAG_RAY_DISPOSABLE").as_deref() != Ok("1") {
        common::skipped(
            "real_ray_unreachable_head",
            "the cluster was not started for these tests (ANORAG_RAY_DISPOSABLE is not 1): not stopping someone's cluster",
        );
        return;
    }
    use std::io::BufRead;
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .arg("--config")
        .arg(&f.cfg)
        .args(["status", "--watch", "--interval", "0.5"])
        .env("ANORAG_STATE_DIR", f.dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(l) = line else { break };
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    let console = std::sync::Arc::new(console::Console::start(&f.cfg, &f.dir.path().join("state")));
    // Both have read the live cluster.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, l) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("status --watch printed nothing");
        if l.starts_with("CLUSTER farm") && l.contains("nodes alive") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status --watch never showed the cluster"
        );
    }
    console.send(b"7");
    console.wait_for("nodes alive", 60);

    let ray_bin = std::env::var("ANORAG_RAY_BIN").expect("ANORAG_RAY_BIN for stopping the cluster");
    let script = format!("{}/scripts/ray-cluster", env!("CARGO_MANIFEST_DIR"));
    // The console is watched while the cluster goes down, so its moment is its own.
    let c2 = console.clone();
    let console_saw = std::thread::spawn(move || {
        c2.wait_for("UNREACHABLE", 90);
        Instant::now()
    });
    let stopping = Instant::now();
    let down = std::process::Command::new(&script)
        .arg("down")
        .env("ANORAG_RAY_BIN", ray_bin)
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    let stopped = Instant::now();
    eprintln!(
        "[real-ray] `ray-cluster down` took {:.2} s",
        stopped.duration_since(stopping).as_secs_f64()
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let (at, l) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("status --watch went quiet");
        if l.starts_with("CLUSTER farm") && l.contains("UNREACHABLE") {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "status --watch never said unreachable"
        );
    };
    eprintln!(
        "[real-ray] status --watch said UNREACHABLE {:.2} s after `down` began",
        seen.duration_since(stopping).as_secs_f64()
    );
    let at = console_saw
        .join()
        .expect("the console never said UNREACHABLE");
    eprintln!(
        "[real-ray] the console's Cluster pane said UNREACHABLE {:.2} s after `down` began",
        at.duration_since(stopping).as_secs_f64()
    );
    assert!(watch.try_wait().unwrap().is_none(), "status --watch ended");
    let _ = watch.kill();
    let _ = watch.wait();
    console.quit();
}

/// The console on a pseudo-terminal, read back through a VT100 parser.
mod console {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    pub struct Console {
        screen: Arc<Mutex<vt100::Parser>>,
        keys: Mutex<Box<dyn Write + Send>>,
        child: Mutex<Box<dyn portable_pty::Child + Send + Sync>>,
    }

    impl Console {
        pub fn start(cfg: &std::path::Path, state: &std::path::Path) -> Self {
            let pair = native_pty_system()
                .openpty(PtySize {
                    rows: 40,
                    cols: 160,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .unwrap();
            let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_anorag-tui"));
            cmd.arg("--config");
            cmd.arg(cfg);
            cmd.env("TERM", "xterm-256color");
            cmd.env("ANORAG_STATE_DIR", state);
            cmd.env_remove("RUST_LOG");
            let child = pair.slave.spawn_command(cmd).unwrap();
            let screen = Arc::new(Mutex::new(vt100::Parser::new(40, 160, 0)));
            let sink = screen.clone();
            super::common::pump(pair.master.try_clone_reader().unwrap(), move |bytes| {
                sink.lock().unwrap().process(bytes)
            });
            let keys = pair.master.take_writer().unwrap();
            // The master must outlive the console: dropping it hangs the console up.
            std::mem::forget(pair.master);
            Self {
                screen,
                keys: Mutex::new(keys),
                child: Mutex::new(child),
            }
        }

        pub fn send(&self, b: &[u8]) {
            let mut k = self.keys.lock().unwrap();
            k.write_all(b).unwrap();
            k.flush().unwrap();
        }

        pub fn wait_for(&self, what: &str, secs: u64) {
            let deadline = Instant::now() + Duration::from_secs(secs);
            loop {
                let text = self.screen.lock().unwrap().screen().contents();
                if text.contains(what) {
                    return;
                }
                if let Some(st) = self.child.lock().unwrap().try_wait().unwrap() {
                    panic!("the console ended ({st:?}):\n{text}");
                }
                assert!(
                    Instant::now() < deadline,
                    "no `{what}` on the screen after {secs} s:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        pub fn quit(&self) {
            self.send(b"q");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(st) = self.child.lock().unwrap().try_wait().unwrap() {
                    assert!(st.success(), "the console exited with {st:?}");
                    return;
                }
                assert!(Instant::now() < deadline, "the console did not quit");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
