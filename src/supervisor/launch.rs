//! A launch profile turned into exactly what the monitor runs: argv (no shell), environment,
//! readiness URL and the restart / stop / log policies.
use crate::config::{RestartPolicy, ServerKind, ServerProfile};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub name: String,
    pub kind: ServerKind,
    pub argv: Vec<String>,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// (variable the child gets, variable of ours that holds the value): secrets travel
    /// through the environment only, never through argv or this file.
    pub secret_env: Vec<(String, String)>,
    /// (variable the child gets, template): `env:` values that came from `${VAR}`, kept as
    /// `${VAR}` and filled in by the monitor from its own environment when it starts the
    /// server, so the value is in no file.
    #[serde(default)]
    pub env_templates: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub host: String,
    pub port: u16,
    pub health_url: String,
    pub route: Option<String>,
    /// The name clients ask for.
    pub model: Option<String>,
    pub restart: RestartPolicy,
    pub max_restarts: u32,
    pub restart_window_s: f64,
    pub stop_timeout_s: f64,
    pub log_max_bytes: u64,
    pub log_keep: u32,
    /// The fit estimate's verdict when it said the server will not fit (vLLM decides; the
    /// warning stays beside the server).
    #[serde(default)]
    pub fit_warning: Option<String>,
}

pub const DEFAULT_STOP_TIMEOUT_S: f64 = 30.0;
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
pub const DEFAULT_RESTART_WINDOW_S: f64 = 300.0;
pub const DEFAULT_LOG_MAX_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_LOG_KEEP: u32 = 3;

pub use crate::models::model_path;

/// Where to connect to reach a server bound to `host` (a wildcard bind is reached on loopback).
pub fn connect_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "" => "127.0.0.1".into(),
        "::" | "[::]" => "[::1]".into(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.into(),
    }
}

/// Moves every `env` entry whose value holds what a `${VAR}` brought in (`from_env`, as the
/// config recorded it) to `env_templates`, with `${VAR}` in the value's place.
pub fn keep_env_values_out(spec: &mut LaunchSpec, from_env: &[(String, String)]) {
    // Longest values first, so a value inside another is not split.
    let mut vars: Vec<&(String, String)> = from_env.iter().filter(|(_, x)| !x.is_empty()).collect();
    vars.sort_by_key(|(_, x)| std::cmp::Reverse(x.len()));
    let (mut keep, mut hide) = (Vec::new(), Vec::new());
    for (k, v) in std::mem::take(&mut spec.env) {
        let mut t = v.clone();
        for (name, value) in &vars {
            t = t.replace(value.as_str(), &format!("${{{name}}}"));
        }
        if t == v {
            keep.push((k, v));
        } else {
            hide.push((k, t));
        }
    }
    spec.env = keep;
    spec.env_templates.extend(hide);
}

/// Fills `${VAR}` in a template from `env` (unset: empty).
pub fn expand(template: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                out.push_str(&env(&rest[i + 2..i + 2 + j]).unwrap_or_default());
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `vllm serve MODEL` with the profile's settings as flags.
fn vllm_argv(p: &ServerProfile, base_dir: &Path, host: &str, port: String) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let model = p.model.clone().unwrap_or_default();
    let model = model_path(&model, base_dir)
        .map(|m| m.display().to_string())
        .unwrap_or(model);
    argv.push(p.executable.clone().unwrap_or_else(|| "vllm".into()));
    argv.extend(["serve".into(), model]);
    if let Some(s) = &p.served_model_name {
        argv.extend(["--served-model-name".into(), s.clone()]);
    }
    argv.extend(["--host".into(), host.to_string(), "--port".into(), port]);
    let mut flag = |f: &str, v: Option<String>| {
        if let Some(v) = v {
            argv.extend([f.to_string(), v]);
        }
    };
    flag("--dtype", p.dtype.clone());
    flag(
        "--max-model-len",
        p.max_model_len.as_ref().map(ToString::to_string),
    );
    flag(
        "--gpu-memory-utilization",
        p.gpu_memory_utilization.map(|v| v.to_string()),
    );
    flag(
        "--tensor-parallel-size",
        p.tensor_parallel_size.map(|v| v.to_string()),
    );
    flag(
        "--pipeline-parallel-size",
        p.pipeline_parallel_size.map(|v| v.to_string()),
    );
    flag(
        "--distributed-executor-backend",
        p.distributed_executor_backend.clone(),
    );
    if p.enforce_eager == Some(true) {
        argv.push("--enforce-eager".into());
    }
    argv
}

/// Builds the launch of profile `name`. `self_exe` is this program (for `kind: sim` and
/// `kind: gateway`); `config_file` is the config it came from (a gateway serves its routes).
pub fn build(
    name: &str,
    p: &ServerProfile,
    base_dir: &Path,
    config_file: &str,
    self_exe: &Path,
) -> LaunchSpec {
    let host = p.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    let port = p.port.to_string();
    // The simulator serves the profile's model name, so the route that names it is answered;
    // only a profile with no model falls back to its own name.
    let served = p.served_model_name.clone().or_else(|| match p.kind {
        ServerKind::Sim => Some(p.model.clone().unwrap_or_else(|| name.to_string())),
        _ => p.model.clone(),
    });
    let mut argv: Vec<String> = Vec::new();
    match p.kind {
        ServerKind::Vllm => argv = vllm_argv(p, base_dir, &host, port),
        ServerKind::Sim => {
            argv.push(self_exe.display().to_string());
            argv.extend(["sim", "--flavor", "vllm", "--host"].map(String::from));
            argv.extend([host.clone(), "--port".into(), port]);
            argv.extend([
                "--model".into(),
                served.clone().unwrap_or_else(|| name.into()),
            ]);
        }
        ServerKind::Command => argv.extend(p.command.clone().unwrap_or_default()),
        ServerKind::Gateway => {
            argv.push(self_exe.display().to_string());
            // The built-in default has no file: the gateway finds the same default itself.
            if Path::new(config_file).is_absolute() {
                argv.extend(["--config".into(), config_file.to_string()]);
            }
            argv.extend(["gateway".into(), "--listen".into()]);
            argv.push(if host.contains(':') {
                format!("[{host}]:{}", p.port)
            } else {
                format!("{host}:{}", p.port)
            });
        }
    }
    argv.extend(p.extra_args.iter().map(ToString::to_string));

    let mut env: Vec<(String, String)> = p
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    if let Some(g) = &p.gpus {
        let list: Vec<String> = g.iter().map(u32::to_string).collect();
        env.push(("CUDA_VISIBLE_DEVICES".into(), list.join(",")));
    }
    let secret_env = p
        .api_key_env
        .iter()
        .map(|v| ("VLLM_API_KEY".to_string(), v.clone()))
        .collect();
    let health_path = p.health_path.clone().unwrap_or_else(|| match p.kind {
        ServerKind::Command => "/v1/models".into(),
        _ => "/health".into(),
    });
    LaunchSpec {
        name: name.to_string(),
        kind: p.kind,
        argv,
        env,
        secret_env,
        env_templates: Vec::new(),
        cwd: base_dir.to_path_buf(),
        health_url: format!("http://{}:{}{health_path}", connect_host(&host), p.port),
        host,
        port: p.port,
        route: p.route.clone(),
        model: served,
        restart: p.restart,
        max_restarts: p.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
        restart_window_s: p.restart_window.unwrap_or(DEFAULT_RESTART_WINDOW_S),
        stop_timeout_s: p.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT_S),
        log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        log_keep: DEFAULT_LOG_KEEP,
        fit_warning: None,
    }
}

/// The first port from `start` that no profile names and nothing listens on (loopback or
/// every address); `start` itself when all are taken up to 65535.
pub fn free_port(start: u16, taken: &[u16]) -> u16 {
    (start..=u16::MAX)
        .find(|p| {
            !taken.contains(p)
                && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok()
        })
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_profile as profile;

    #[test]
    fn env_values_from_the_environment_stay_out_of_the_spec() {
        let mut s = build(
            "p",
            &profile("kind: sim\nport: 1\nenv: {HF_TOKEN: hf_abc123, HF_HOME: /data, MIX: a-hf_abc123-b}"),
            Path::new("/"),
            "t.yaml",
            Path::new("/x"),
        );
        keep_env_values_out(&mut s, &[("MY_TOKEN".into(), "hf_abc123".into())]);
        assert_eq!(s.env, [("HF_HOME".to_string(), "/data".to_string())]);
        assert_eq!(
            s.env_templates,
            [
                ("HF_TOKEN".to_string(), "${MY_TOKEN}".to_string()),
                ("MIX".to_string(), "a-${MY_TOKEN}-b".to_string())
            ]
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("hf_abc123"), "{json}");
        let env = |k: &str| (k == "MY_TOKEN").then(|| "hf_abc123".to_string());
        assert_eq!(expand("a-${MY_TOKEN}-b", &env), "a-hf_abc123-b");
        assert_eq!(expand("${UNSET}x", &env), "x");
    }

    #[test]
    fn a_sim_profile_serves_its_model_not_its_name() {
        let argv = |yaml: &str| {
            build(
                "demo",
                &profile(yaml),
                Path::new("/"),
                "t.yaml",
                Path::new("/x"),
            )
            .argv
        };
        let with_model = argv("kind: sim\nport: 8010\nmodel: qwen-sim");
        let at = with_model.iter().position(|a| a == "--model").unwrap();
        assert_eq!(with_model[at + 1], "qwen-sim", "{with_model:?}");
        let bare = argv("kind: sim\nport: 8010");
        let at = bare.iter().position(|a| a == "--model").unwrap();
        assert_eq!(bare[at + 1], "demo", "{bare:?}");
    }

    #[test]
    fn vllm_argv_is_built_without_a_shell_and_the_key_stays_off_it() {
        let p = profile(
            "kind: vllm\nmodel: Qwen/Qwen2.5-0.5B-Instruct\nserved_model_name: qwen2_5_0_5b\nport: 8001\ndtype: bfloat16\nmax_model_len: 32k\ngpu_memory_utilization: 0.3\ntensor_parallel_size: 2\nenforce_eager: true\ngpus: [2, 3]\napi_key_env: MY_KEY\nextra_args: [--max-num-seqs, 64]\nenv: {HF_HOME: /data/hf}",
        );
        let s = build(
            "tiny",
            &p,
            Path::new("/cfg"),
            "t.yaml",
            Path::new("/bin/anorag-tui"),
        );
        assert_eq!(
            s.argv,
            [
                "vllm",
                "serve",
                "Qwen/Qwen2.5-0.5B-Instruct",
                "--served-model-name",
                "qwen2_5_0_5b",
                "--host",
                "127.0.0.1",
                "--port",
                "8001",
                "--dtype",
                "bfloat16",
                "--max-model-len",
                "32k",
                "--gpu-memory-utilization",
                "0.3",
                "--tensor-parallel-size",
                "2",
                "--enforce-eager",
                "--max-num-seqs",
                "64"
            ]
        );
        assert!(s
            .env
            .contains(&("CUDA_VISIBLE_DEVICES".into(), "2,3".into())));
        assert!(s.env.contains(&("HF_HOME".into(), "/data/hf".into())));
        assert_eq!(
            s.secret_env,
            vec![("VLLM_API_KEY".to_string(), "MY_KEY".to_string())]
        );
        assert_eq!(s.health_url, "http://127.0.0.1:8001/health");
        assert_eq!(s.model.as_deref(), Some("qwen2_5_0_5b"));
    }

    #[test]
    fn relative_model_paths_are_resolved_against_the_config_folder() {
        let p = profile("kind: vllm\nmodel: ./models/tiny\nport: 8001\nhost: 0.0.0.0");
        let s = build("t", &p, Path::new("/etc/anorag"), "t.yaml", Path::new("x"));
        assert_eq!(s.argv[2], "/etc/anorag/./models/tiny");
        assert_eq!(
            s.health_url, "http://127.0.0.1:8001/health",
            "a wildcard bind is probed on loopback"
        );
        assert_eq!(
            s.model.as_deref(),
            Some("./models/tiny"),
            "vLLM serves the model under its given name"
        );
    }

    #[test]
    fn sim_and_command_kinds() {
        let p = profile("kind: sim\nport: 8010\nextra_args: [--ttft-ms, 30]");
        let s = build(
            "demo",
            &p,
            Path::new("/"),
            "t.yaml",
            Path::new("/bin/anorag-tui"),
        );
        assert_eq!(
            s.argv,
            [
                "/bin/anorag-tui",
                "sim",
                "--flavor",
                "vllm",
                "--host",
                "127.0.0.1",
                "--port",
                "8010",
                "--model",
                "demo",
                "--ttft-ms",
                "30"
            ]
        );
        let p = profile("kind: command\ncommand: [python3, -m, srv]\nport: 9000");
        let s = build("c", &p, Path::new("/"), "t.yaml", Path::new("x"));
        assert_eq!(s.argv, ["python3", "-m", "srv"]);
        assert_eq!(s.health_url, "http://127.0.0.1:9000/v1/models");
    }
}
