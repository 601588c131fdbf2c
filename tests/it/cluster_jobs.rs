//! Launch profiles as cluster jobs, without a cluster: the job spec a profile becomes, the
//! shell entrypoint run by a real shell, the states mapped from jobs recorded from the real
//! Ray 2.60.0 (tests/fixtures/ray), and why a pending job waits.
use anorag::cluster::ray::{parse_job, parse_nodes};
use anorag::cluster::{ClusterView, JobStatus};
use anorag::config::load_str;
use anorag::supervisor::cluster_spec::{
    self as cluster_jobs, current, entrypoint, gpus_needed, job_spec, launch_on, pending_reason,
    status_of, with_host,
};
use anorag::supervisor::State;
use serde_json::Value;
use std::path::Path;

fn fixture(name: &str) -> Value {
    let p = format!("{}/tests/fixtures/ray/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn config(servers: &str) -> anorag::config::Config {
    let text = format!(
        "llm:\n  provider: builtin\n  builtin: {{}}\nclusters:\n  farm: {{kind: ray, address: \"http://127.0.0.1:8265\", host: 127.0.0.1}}\n  open: {{kind: ray, address: \"http://10.0.0.1:8265\"}}\nservers:\n{servers}"
    );
    load_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn view() -> ClusterView {
    ClusterView {
        cluster: "farm".into(),
        nodes: parse_nodes(
            &fixture("nodes_summary.json"),
            &fixture("cluster_status.json"),
        ),
        ..ClusterView::default()
    }
}

/// The Ray job of profile `c` on cluster `farm`.
fn job_of_c(cfg: &anorag::config::Config) -> anorag::cluster::JobSpec {
    let spec = launch_on(
        "c",
        &cfg.servers["c"],
        &cfg.clusters["farm"],
        cfg,
        Path::new("x"),
    );
    job_spec("c", &cfg.servers["c"], &spec, "t", 1)
}

#[test]
fn a_profile_becomes_a_job_with_its_argv_placement_and_metadata() {
    let cfg = config(
        "  q:\n    kind: vllm\n    model: Qwen/Qwen2.5-0.5B-Instruct\n    port: 8001\n    cluster: farm\n    tensor_parallel_size: 2\n    pipeline_parallel_size: 2\n    resources: {node2: 1}\n    num_cpus: 2\n    extra_args: [--chat-template, \"{{ it's }}\"]\n    env: {HF_HOME: /data/hf}\n",
    );
    let p = &cfg.servers["q"];
    let spec = launch_on(
        "q",
        p,
        &cfg.clusters["farm"],
        &cfg,
        Path::new("/bin/anorag-tui"),
    );
    let job = job_spec("q", p, &spec, "/etc/anorag/dashboard.yaml", 0x1234);
    assert_eq!(job.submission_id, "anorag-q-1234");
    assert_eq!(
        job.entrypoint,
        r#"exec vllm serve Qwen/Qwen2.5-0.5B-Instruct --host 127.0.0.1 --port 8001 --tensor-parallel-size 2 --pipeline-parallel-size 2 --chat-template '{{ it'\''s }}'"#
    );
    // Ray assigns the job's GPUs: no CUDA_VISIBLE_DEVICES of ours.
    assert_eq!(job.num_gpus, 4.0);
    assert_eq!(job.num_cpus, 2.0);
    assert_eq!(job.resources["node2"], 1.0);
    assert_eq!(job.env["HF_HOME"], "/data/hf");
    assert!(
        !job.env.contains_key("CUDA_VISIBLE_DEVICES"),
        "{:?}",
        job.env
    );
    assert_eq!(job.env[cluster_jobs::JOB_ENV], "anorag-q-1234");
    assert_eq!(job.metadata["anorag.profile"], "q");
    assert_eq!(job.metadata["anorag.config"], "/etc/anorag/dashboard.yaml");
    assert_eq!(job.metadata["anorag.port"], "8001");
}

#[test]
fn gpus_follow_the_profile_and_vllm_ray_executor_holds_none() {
    let g = |yaml: &str| {
        let cfg = config(&format!(
            "  p:\n    kind: vllm\n    model: m\n    port: 1\n    cluster: farm\n{yaml}"
        ));
        gpus_needed(&cfg.servers["p"])
    };
    assert_eq!(g(""), 0.0);
    assert_eq!(g("    tensor_parallel_size: 4\n"), 4.0);
    assert_eq!(
        g("    tensor_parallel_size: 4\n    pipeline_parallel_size: 2\n"),
        8.0
    );
    assert_eq!(g("    gpus: [0, 1]\n"), 2.0);
    assert_eq!(
        g("    tensor_parallel_size: 4\n    distributed_executor_backend: ray\n"),
        0.0,
        "vLLM's Ray executor places its own GPU workers"
    );
}

#[test]
fn the_bind_and_the_route_host_follow_the_cluster_unless_pinned() {
    let cfg = config("  a:\n    kind: sim\n    port: 9001\n    cluster: open\n  b:\n    kind: sim\n    port: 9002\n    cluster: farm\n");
    let open = &cfg.clusters["open"];
    let farm = &cfg.clusters["farm"];
    assert_eq!(cluster_jobs::bind_host(&cfg.servers["a"], open), "0.0.0.0");
    assert_eq!(
        cluster_jobs::connect_host(&cfg.servers["a"], open, Some("10.0.0.7")),
        "10.0.0.7"
    );
    assert_eq!(
        cluster_jobs::bind_host(&cfg.servers["b"], farm),
        "127.0.0.1"
    );
    assert_eq!(
        cluster_jobs::connect_host(&cfg.servers["b"], farm, Some("10.0.0.7")),
        "127.0.0.1"
    );
    assert_eq!(
        with_host("http://127.0.0.1:8000/v1", "10.0.0.7", 9001).as_deref(),
        Some("http://10.0.0.7:9001/v1")
    );
}

#[test]
fn the_entrypoint_runs_in_a_real_shell_with_its_words_and_the_nodes_variables() {
    // Words a shell would split or expand reach the program as written; `${VAR}` values come
    // from the node's environment, not from the job spec.
    let cfg = load_str(
        "llm:\n  provider: builtin\n  builtin: {}\nclusters:\n  farm: {kind: ray, address: \"http://127.0.0.1:8265\"}\nservers:\n  c:\n    kind: command\n    command: [sh, -c, 'printf \"%s|\" \"$@\"', x, \"it's\", \"$HOME\", \"a b\", \"*\"]\n    port: 1\n    cluster: farm\n",
        "t.yaml",
    );
    let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
    let job = job_of_c(&cfg);
    let out = std::process::Command::new("sh")
        .args(["-c", &job.entrypoint])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "it's|$HOME|a b|*|", "from {}", job.entrypoint);
}

#[test]
fn a_template_value_is_filled_in_by_the_nodes_shell() {
    let cfg = anorag::config::load_str_with_env(
        "llm:\n  provider: builtin\n  builtin: {}\nclusters:\n  farm: {kind: ray, address: \"http://127.0.0.1:8265\"}\nservers:\n  c:\n    kind: command\n    command: [sh, -c, 'printf %s \"$HF_TOKEN\"']\n    port: 1\n    cluster: farm\n    env: {HF_TOKEN: \"${MY_HF_TOKEN}\"}\n",
        "t.yaml",
        &|k: &str| (k == "MY_HF_TOKEN").then(|| "hf_local_value".to_string()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let job = job_of_c(&cfg);
    // The value this machine has never travels: not in the env, not in the entrypoint.
    assert!(
        !job.env.values().any(|v| v.contains("hf_local_value")),
        "{:?}",
        job.env
    );
    assert!(
        !job.entrypoint.contains("hf_local_value"),
        "{}",
        job.entrypoint
    );
    assert!(
        job.entrypoint
            .starts_with("export HF_TOKEN=\"${MY_HF_TOKEN}\"; exec "),
        "{}",
        job.entrypoint
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &job.entrypoint])
        .env("MY_HF_TOKEN", "hf_node_value")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hf_node_value");
}

#[test]
fn restart_on_failure_restarts_on_the_node_and_gives_up_past_the_guard() {
    let cfg = config(
        "  f:\n    kind: command\n    command: [sh, -c, 'echo run; exit 3']\n    port: 1\n    cluster: farm\n    restart: on-failure\n    max_restarts: 1\n    restart_window: 60\n",
    );
    let spec = launch_on(
        "f",
        &cfg.servers["f"],
        &cfg.clusters["farm"],
        &cfg,
        Path::new("x"),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &entrypoint(&spec)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert_eq!(text.matches("run\n").count(), 2, "{text}");
    assert_eq!(
        text.matches(cluster_jobs::RESTART_MARK).count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("crash loop: 1 restarts within 60 s"),
        "{text}"
    );
}

fn job_with_profile(file: &str, profile: &str, config: &str) -> anorag::cluster::ClusterJob {
    let mut j = parse_job(&fixture(file)).unwrap();
    j.metadata.insert("anorag.profile".into(), profile.into());
    j.metadata.insert("anorag.config".into(), config.into());
    j
}

#[test]
fn states_come_from_the_job_and_the_route() {
    let cfg =
        config("  demo:\n    kind: sim\n    port: 9001\n    cluster: farm\n    route: builtin\n");
    let p = &cfg.servers["demo"];
    let c = &cfg.clusters["farm"];
    let spec = launch_on("demo", p, c, &cfg, Path::new("x"));
    let mut v = view();
    let st =
        |v: &ClusterView, job: Option<&anorag::cluster::ClusterJob>, healthy, was_ready, now| {
            status_of("demo", p, c, &spec, job, v, healthy, was_ready, now)
        };
    assert_eq!(st(&v, None, None, false, 0).state, State::Stopped);

    let running = job_with_profile("job_running.json", "demo", "t.yaml");
    let t0 = running.start_ms.unwrap();
    let s = st(&v, Some(&running), Some(true), false, t0 + 5_000);
    assert_eq!(s.state, State::Ready);
    assert_eq!(
        s.node.as_deref(),
        Some("node2"),
        "the recorded job ran on node2"
    );
    assert_eq!(s.host, "127.0.0.1", "the cluster pins loopback");
    assert_eq!(s.uptime_s, Some(5.0));
    let s = st(&v, Some(&running), Some(false), false, t0 + 5_000);
    assert_eq!(s.state, State::Starting);
    assert!(s
        .message
        .unwrap()
        .contains("waiting for http://127.0.0.1:9001/health"));
    assert_eq!(
        st(&v, Some(&running), Some(false), true, t0 + 5_000).state,
        State::Unhealthy
    );

    let failed = job_with_profile("job_failed.json", "demo", "t.yaml");
    let s = st(&v, Some(&failed), None, false, t0);
    assert_eq!(s.state, State::Crashed);
    assert_eq!(s.exit_code, Some(137));
    assert!(
        s.message.as_deref().unwrap().contains("exit code 137"),
        "{:?}",
        s.message
    );
    assert!(
        !s.message.as_deref().unwrap().contains('\n'),
        "Ray's log tail stays out"
    );

    let mut killed = failed.clone();
    killed.exit_code = Some(-9);
    let s = st(&v, Some(&killed), None, false, t0);
    assert_eq!(
        (s.state, s.signal, s.exit_code),
        (State::Crashed, Some(9), None)
    );

    let stopped = job_with_profile("job_stopped.json", "demo", "t.yaml");
    assert_eq!(st(&v, Some(&stopped), None, false, t0).state, State::Exited);

    let pending = job_with_profile("job_pending.json", "demo", "t.yaml");
    let s = st(&v, Some(&pending), None, false, t0);
    assert_eq!(s.state, State::Starting);
    assert!(s.message.unwrap().starts_with("pending"));

    // Which job is the server: ours for this config, a live one before a newer finished one.
    v.jobs = vec![
        stopped.clone(),
        running.clone(),
        job_with_profile("job_failed.json", "demo", "other.yaml"),
    ];
    assert_eq!(current(&v.jobs, "demo", "t.yaml").unwrap().id, running.id);
    assert!(current(&v.jobs, "demo", "nope.yaml").is_none());
    assert!(current(&v.jobs, "other", "t.yaml").is_none());
}

#[test]
fn a_pending_job_says_what_it_waits_for() {
    let cfg = config(
        "  big:\n    kind: vllm\n    model: m\n    port: 1\n    cluster: farm\n    tensor_parallel_size: 2\n  pinned:\n    kind: sim\n    port: 2\n    cluster: farm\n    resources: {node9: 1}\n",
    );
    let v = view();
    let reason = |name: &str| {
        let p = &cfg.servers[name];
        let spec = launch_on(name, p, &cfg.clusters["farm"], &cfg, Path::new("x"));
        pending_reason(&job_spec(name, p, &spec, "t", 0), &v)
    };
    assert_eq!(
        reason("big"),
        "pending: needs 2 GPUs, the cluster has 0 free"
    );
    assert_eq!(
        reason("pinned"),
        "pending: needs `node9: 1`, which no alive node has"
    );

    // On the recorded 16 x 8 fleet (one node dead): what is free counts live nodes only.
    let fleet = ClusterView {
        nodes: parse_nodes(
            &fixture("nodes_16x8.json"),
            &fixture("cluster_status_16x8.json"),
        ),
        ..ClusterView::default()
    };
    let free: f64 = fleet
        .nodes
        .iter()
        .filter(|n| n.alive)
        .map(|n| n.gpus_total - n.gpus_used)
        .sum();
    let cfg = config("  huge:\n    kind: vllm\n    model: m\n    port: 1\n    cluster: farm\n    tensor_parallel_size: 200\n");
    let p = &cfg.servers["huge"];
    let spec = launch_on("huge", p, &cfg.clusters["farm"], &cfg, Path::new("x"));
    assert_eq!(
        pending_reason(&job_spec("huge", p, &spec, "t", 0), &fleet),
        format!("pending: needs 200 GPUs, the cluster has {free:.0} free")
    );
    assert_eq!(JobStatus::Pending.as_str(), "PENDING");
}

#[test]
fn the_shipped_fleet_example_loads() {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.yaml");
    let cfg = anorag::config::load(&anorag::config::Source::File(p.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.file, p.canonicalize().unwrap().display().to_string());
    assert!(["fleet_sim", "tiny", "needs_gpus"]
        .iter()
        .all(|n| cfg.servers[*n].cluster.as_deref() == Some("farm")));
}
