//! What a cluster profile's job is and what its state means (DESIGN.md §9), without calling
//! anything: the job spec built from the local launch (argv quoted for a shell, placement,
//! metadata), the hosts a server binds to and is reached at, the state mapped from the job and
//! its route, and why a pending job waits. `cluster_jobs` makes the calls.
use super::launch::{self, LaunchSpec};
use super::record::State;
use super::status::ServerStatus;
use crate::cluster::{ClusterJob, ClusterView, JobSpec, JobStatus, META_CONFIG, META_PROFILE};
use crate::config::{ClusterConfig, Config, RestartPolicy, ServerProfile};
use std::collections::BTreeMap;
use std::path::Path;

/// Job metadata: the port the server listens on (the route's port on the node).
pub const META_PORT: &str = "anorag.port";
/// Job metadata: the fit estimate's warning at submission (the job carries it, so every
/// shell on this config shows it beside the server).
pub const META_FIT: &str = "anorag.fit_warning";
/// Set in every job's environment, so the job's processes can be found on a node.
pub const JOB_ENV: &str = "ANORAG_JOB";
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
    let mut spec = launch::build(name, &on_node, &cfg.base_dir, &cfg.file, exe);
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

/// The GPUs a cluster job would get, as (index, total, used): on the alive node whose
/// `need` freest GPUs leave the most room in the tightest of them (Ray places the job; this
/// is the best case), those GPUs.
pub fn node_gpus(nodes: &[crate::cluster::ClusterNode], need: usize) -> Vec<(u32, u64, u64)> {
    let need = need.max(1);
    nodes
        .iter()
        .filter(|n| n.alive)
        .filter_map(|n| {
            let mut g: Vec<(u32, u64, u64)> = n
                .gpus
                .iter()
                .filter_map(|g| {
                    Some((
                        g.index,
                        g.memory_total_bytes?,
                        g.memory_used_bytes.unwrap_or(0),
                    ))
                })
                .collect();
            g.sort_by_key(|x| std::cmp::Reverse(x.1.saturating_sub(x.2)));
            g.truncate(need);
            (g.len() == need).then_some(g)
        })
        .max_by_key(|g| g.iter().map(|x| x.1.saturating_sub(x.2)).min().unwrap_or(0))
        .map(|mut g| {
            g.sort();
            g
        })
        .unwrap_or_default()
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

/// What servers print once they answer: vLLM's (uvicorn's) start-up lines, our simulator's
/// banner.
const READY_LINES: &[&str] = &[
    "Application startup complete",
    "Uvicorn running on",
    "anorag-tui sim: ",
];

/// Whether a job's log shows its server came up.
pub fn log_shows_ready(log: &str) -> bool {
    READY_LINES.iter().any(|m| log.contains(m))
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
        kind: p.kind.as_str().to_string(),
        host: connect_host(p, c, node.map(|n| n.address.as_str())),
        port: p.port,
        route: p.route.clone(),
        model: spec.model.clone(),
        argv: super::record::redact_argv(&spec.argv),
        configured: true,
        autostart: p.autostart,
        cluster: p.cluster.clone(),
        node: node.map(|n| n.label()),
        ..ServerStatus::unknown(name)
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
    st.fit_warning = j.metadata.get(META_FIT).cloned();
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
pub fn health_path(spec: &LaunchSpec) -> &str {
    let after_scheme = spec.health_url.split_once("://").map_or("", |x| x.1);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// `url` with its host and port replaced.
pub fn with_host(url: &str, host: &str, port: u16) -> Option<String> {
    let mut u = reqwest::Url::parse(url).ok()?;
    u.set_host(Some(host)).ok()?;
    u.set_port(Some(port)).ok()?;
    Some(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::node_gpus;
    use crate::cluster::{ClusterNode, NodeGpu};

    fn node(alive: bool, gpus: &[(u64, u64)]) -> ClusterNode {
        ClusterNode {
            id: "n".into(),
            address: "10.0.0.1".into(),
            hostname: None,
            head: false,
            alive,
            cpus_total: 8.0,
            cpus_used: 0.0,
            gpus_total: gpus.len() as f64,
            gpus_used: 0.0,
            memory_total_bytes: 0,
            memory_used_bytes: 0,
            resources: Default::default(),
            gpus: gpus
                .iter()
                .enumerate()
                .map(|(i, (t, u))| NodeGpu {
                    index: i as u32,
                    name: None,
                    uuid: None,
                    utilization_pct: None,
                    memory_used_bytes: Some(*u),
                    memory_total_bytes: Some(*t),
                    temperature_c: None,
                    power_w: None,
                    processes: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_job_is_sized_on_the_alive_node_with_the_most_free_memory_and_enough_gpus() {
        let g = 1u64 << 30;
        let nodes = [
            node(false, &[(80 * g, 0), (80 * g, 0)]),
            node(true, &[(80 * g, 70 * g), (80 * g, 0)]),
            node(true, &[(24 * g, 0), (24 * g, 0)]),
            node(true, &[(80 * g, 0)]),
        ];
        // Two ranks: each needs room, so two free 24 GiB GPUs beat 10 GiB free beside 80.
        assert_eq!(node_gpus(&nodes, 2), vec![(0, 24 * g, 0), (1, 24 * g, 0)]);
        assert_eq!(node_gpus(&nodes, 1), vec![(0, 80 * g, 0)]);
        assert!(node_gpus(&nodes, 4).is_empty());
    }

    #[test]
    fn a_log_tells_whether_the_server_came_up() {
        assert!(super::log_shows_ready(
            "(APIServer pid=9) INFO:     Application startup complete.\n"
        ));
        assert!(super::log_shows_ready(
            "anorag-tui sim: vllm flavour serving `m` on http://0.0.0.0:8000/v1"
        ));
        assert!(!super::log_shows_ready(
            "(APIServer pid=9) INFO Loading weights took 3.2 s"
        ));
    }
}
