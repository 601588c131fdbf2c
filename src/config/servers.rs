//! Checks on `servers.NAME` launch profiles that serde cannot make.
use super::locate::{Path, Problem, Seg};
use super::schema::{Config, Scalar, ServerKind, ServerProfile};
use std::collections::HashSet;

const DTYPES: &[&str] = &["auto", "half", "float16", "bfloat16", "float", "float32"];
const BACKENDS: &[&str] = &["ray", "mp", "uni", "external_launcher"];

/// `servers.NAME.FIELD`, where FIELD may itself be dotted (`env.HOME`).
fn at(name: &str, field: &str) -> Path {
    let mut p = vec![Seg::Key("servers".into()), Seg::Key(name.into())];
    p.extend(
        field
            .split('.')
            .filter(|f| !f.is_empty())
            .map(|f| Seg::Key(f.into())),
    );
    p
}

fn valid_env_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// `2048`, `32k` (k = 1000), `32K` (K = 1024), `auto` or `-1`, as vLLM reads them.
fn valid_model_len(v: &Scalar) -> bool {
    match v {
        Scalar::Int(n) => *n > 0 || *n == -1,
        Scalar::Str(s) => {
            let s = s.trim();
            s == "auto"
                || s == "-1"
                || s.strip_suffix(['k', 'K', 'm', 'M'])
                    .unwrap_or(s)
                    .parse::<u64>()
                    .is_ok_and(|n| n > 0)
        }
        _ => false,
    }
}

pub fn validate(cfg: &Config, out: &mut Vec<Problem>) {
    let routes: Vec<String> = cfg.routes().into_iter().map(|r| r.name).collect();
    for (name, p) in &cfg.servers {
        check_profile(name, p, &routes, out);
        check_secret_flags(name, p, out);
        check_cluster(name, p, cfg, out);
    }
}

/// A cluster profile: the cluster exists, no API key travels through the job spec, and its
/// resources are real amounts.
fn check_cluster(name: &str, p: &ServerProfile, cfg: &Config, out: &mut Vec<Problem>) {
    match &p.cluster {
        None => {
            if !p.resources.is_empty() || p.num_cpus.is_some() {
                let field = if p.resources.is_empty() {
                    "num_cpus"
                } else {
                    "resources"
                };
                out.push((
                    at(name, field),
                    true,
                    format!("`{field}` places a job on a cluster; this profile has no `cluster:`"),
                ));
            }
        }
        Some(c) => {
            if !cfg.clusters.contains_key(c) {
                let known: Vec<&str> = cfg.clusters.keys().map(String::as_str).collect();
                out.push((
                    at(name, "cluster"),
                    false,
                    format!(
                        "unknown cluster `{c}` (clusters: {})",
                        if known.is_empty() {
                            "none; add one under `clusters:`".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            if p.api_key_env.is_some() {
                out.push((
                    at(name, "api_key_env"),
                    true,
                    "a cluster's job spec is shown on its dashboard to anyone who can read it, so an API key never goes there: set the key in the nodes' own environment (VLLM_API_KEY) and remove `api_key_env` from this profile".into(),
                ));
            }
            for (k, v) in &p.resources {
                if !(v.is_finite() && *v > 0.0) {
                    out.push((
                        at(name, &format!("resources.{k}")),
                        false,
                        format!("must be a positive amount, not {v}"),
                    ));
                }
            }
            if let Some(n) = p.num_cpus {
                if !(n.is_finite() && (0.0..=1024.0).contains(&n)) {
                    out.push((
                        at(name, "num_cpus"),
                        false,
                        format!("must be from 0 to 1024, not {n}"),
                    ));
                }
            }
        }
    }
}

/// Whether a command-line flag carries a secret: a word of its name is key, token, secret or
/// password (`--api-key`, `--hf-token`; not `--max-num-batched-tokens` or `--tokenizer`).
fn is_secret_flag(arg: &str) -> bool {
    let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
        return false;
    };
    let name = name.split('=').next().unwrap_or(name);
    name.split(['-', '_']).any(|w| {
        matches!(
            w.to_ascii_lowercase().as_str(),
            "key" | "token" | "secret" | "password" | "apikey"
        )
    })
}

/// A secret on a command line is seen by anyone who lists processes, and lands in our
/// records: the key goes through `api_key_env`, other secrets through the environment.
fn check_secret_flags(name: &str, p: &ServerProfile, out: &mut Vec<Problem>) {
    for (i, a) in p.extra_args.iter().enumerate() {
        let arg = a.to_string();
        if !is_secret_flag(&arg) {
            continue;
        }
        let mut path = at(name, "extra_args");
        path.push(Seg::Index(i));
        let flag = arg.split('=').next().unwrap_or(&arg);
        let fix = if flag.contains("api") && flag.contains("key") || flag == "--api-key" {
            "set `api_key_env: VAR` instead: the key then reaches the server in its environment (`VLLM_API_KEY`), never on its command line".to_string()
        } else {
            format!("pass it through the environment instead (for example `env: {{HF_TOKEN: ${{HF_TOKEN}}}}`): `{flag}` on the command line is seen by anyone who lists processes")
        };
        out.push((
            path,
            false,
            format!("`{flag}` puts a secret on the command line; {fix}"),
        ));
    }
}

fn check_profile(name: &str, p: &ServerProfile, routes: &[String], out: &mut Vec<Problem>) {
    let mut err = |field: &str, on_key: bool, msg: String| out.push((at(name, field), on_key, msg));
    identity(name, p, &mut err);
    kind_fields(p, &mut err);
    vllm_fields(p, &mut err);
    running(p, routes, &mut err);
}

/// The profile's name (a directory in the state directory) and its port.
fn identity(name: &str, p: &ServerProfile, err: &mut dyn FnMut(&str, bool, String)) {
    // The name becomes a directory in the state directory.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        err(
            "",
            true,
            format!("server name `{name}` may only use letters, digits, `_` and `-`"),
        );
    }
    if p.port == 0 {
        err(
            "port",
            false,
            "must be a port number from 1 to 65535".into(),
        );
    }
}

/// What its kind needs, and the fields only vLLM takes.
fn kind_fields(p: &ServerProfile, err: &mut dyn FnMut(&str, bool, String)) {
    match p.kind {
        ServerKind::Vllm => {
            if p.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                err(
                    "kind",
                    false,
                    "`kind: vllm` needs `model` (a Hugging Face id or a local path)".into(),
                );
            }
            if p.command.is_some() {
                err(
                    "command",
                    true,
                    "`command` is for `kind: command`; vLLM's argv is built from the profile"
                        .into(),
                );
            }
        }
        ServerKind::Sim => {
            for (field, set) in [
                ("command", p.command.is_some()),
                ("executable", p.executable.is_some()),
            ] {
                if set {
                    err(field, true, format!("`{field}` does not apply to `kind: sim` (it runs this program's own simulator)"));
                }
            }
        }
        ServerKind::Gateway => {
            for (field, set) in [
                ("command", p.command.is_some()),
                ("executable", p.executable.is_some()),
                ("model", p.model.is_some()),
                ("served_model_name", p.served_model_name.is_some()),
                ("route", p.route.is_some()),
                ("cluster", p.cluster.is_some()),
            ] {
                if set {
                    err(field, true, format!("`{field}` does not apply to `kind: gateway` (it runs this program's gateway over every route of this config; see the `gateway:` block)"));
                }
            }
        }
        ServerKind::Command => match &p.command {
            Some(c) if !c.is_empty() && !c[0].trim().is_empty() => {}
            _ => err(
                "kind",
                false,
                "`kind: command` needs `command`: the server's argv, e.g. [python3, -m, my_server]"
                    .into(),
            ),
        },
    }
    if p.kind != ServerKind::Vllm {
        for (field, set) in [
            ("dtype", p.dtype.is_some()),
            ("max_model_len", p.max_model_len.is_some()),
            ("gpu_memory_utilization", p.gpu_memory_utilization.is_some()),
            ("tensor_parallel_size", p.tensor_parallel_size.is_some()),
            ("pipeline_parallel_size", p.pipeline_parallel_size.is_some()),
            (
                "distributed_executor_backend",
                p.distributed_executor_backend.is_some(),
            ),
            ("enforce_eager", p.enforce_eager.is_some()),
        ] {
            if set {
                err(field, true, format!("`{field}` is a vLLM setting; this server is `kind: {}` (pass its own flags in `extra_args`)", p.kind.as_str()));
            }
        }
    }
}

/// vLLM's own settings: names, host, dtype, lengths, memory, parallelism, GPUs.
fn vllm_fields(p: &ServerProfile, err: &mut dyn FnMut(&str, bool, String)) {
    if let Some(s) = &p.served_model_name {
        if s.trim().is_empty() {
            err("served_model_name", false, "must not be empty".into());
        }
    }
    if let Some(h) = &p.host {
        if h.trim().is_empty() || h.contains('/') || h.contains(' ') {
            err(
                "host",
                false,
                format!("`{h}` is not a host name or address"),
            );
        }
    }
    if let Some(d) = &p.dtype {
        if !DTYPES.contains(&d.as_str()) {
            err(
                "dtype",
                false,
                format!("`{d}` is not one of {}", DTYPES.join(", ")),
            );
        }
    }
    if let Some(v) = &p.max_model_len {
        if !valid_model_len(v) {
            err(
                "max_model_len",
                false,
                format!("`{v}` is not a length (e.g. 4096, 32k, 32K or auto)"),
            );
        }
    }
    if let Some(u) = p.gpu_memory_utilization {
        if !(u > 0.0 && u <= 1.0) {
            err(
                "gpu_memory_utilization",
                false,
                format!("{u} is outside (0, 1]: it is a fraction of each GPU's memory"),
            );
        }
    }
    for (field, v) in [
        ("tensor_parallel_size", p.tensor_parallel_size),
        ("pipeline_parallel_size", p.pipeline_parallel_size),
    ] {
        if v == Some(0) {
            err(field, false, "must be at least 1".into());
        }
    }
    if let Some(b) = &p.distributed_executor_backend {
        if !BACKENDS.contains(&b.as_str()) {
            err(
                "distributed_executor_backend",
                false,
                format!("`{b}` is not one of {}", BACKENDS.join(", ")),
            );
        }
    }
    if let Some(g) = &p.gpus {
        let mut seen = HashSet::new();
        if g.is_empty() {
            err(
                "gpus",
                false,
                "lists no GPU; leave it out to let the server see all of them".into(),
            );
        }
        for i in g {
            if !seen.insert(i) {
                err("gpus", false, format!("GPU {i} is listed twice"));
            }
        }
        let world = p.tensor_parallel_size.unwrap_or(1) * p.pipeline_parallel_size.unwrap_or(1);
        let multi_node = p.distributed_executor_backend.as_deref() == Some("ray");
        if !g.is_empty() && world as usize > g.len() && !multi_node {
            err(
                "gpus",
                false,
                format!(
                    "lists {} GPU(s) but tensor_parallel_size × pipeline_parallel_size is {world}",
                    g.len()
                ),
            );
        }
        if p.env.contains_key("CUDA_VISIBLE_DEVICES") {
            err(
                "gpus",
                true,
                "`gpus` and `env.CUDA_VISIBLE_DEVICES` both choose the GPUs; keep one".into(),
            );
        }
    }
}

/// How it runs: its key and environment, route, stop and restart policy, health path.
fn running(p: &ServerProfile, routes: &[String], err: &mut dyn FnMut(&str, bool, String)) {
    if let Some(e) = &p.api_key_env {
        if !valid_env_name(e) {
            err("api_key_env", false, "must name an environment variable (e.g. VLLM_API_KEY); the key itself never goes in the file".into());
        }
    }
    for (k, v) in &p.env {
        let field = format!("env.{k}");
        if !valid_env_name(k) {
            err(
                &field,
                true,
                format!("`{k}` is not a valid environment variable name"),
            );
        } else if k == "VLLM_API_KEY" && !matches!(v, Scalar::Str(s) if s.is_empty()) {
            err(&field, false, "a key must not be written in the file: set `api_key_env` to the name of the variable that holds it".into());
        }
    }
    if let Some(r) = &p.route {
        if !routes.iter().any(|x| x == r) {
            err(
                "route",
                false,
                format!("unknown route `{r}` (routes: {})", routes.join(", ")),
            );
        }
    }
    if let Some(t) = p.stop_timeout {
        if crate::input::check_seconds(t, 0.001).is_err() {
            err(
                "stop_timeout",
                false,
                format!(
                    "must be a number of seconds from 0.001 to {} (30 days), not {t}",
                    crate::input::MAX_SECONDS
                ),
            );
        }
    }
    if let Some(w) = p.restart_window {
        if crate::input::check_seconds(w, 0.001).is_err() {
            err(
                "restart_window",
                false,
                format!(
                    "must be a number of seconds from 0.001 to {} (30 days), not {w}",
                    crate::input::MAX_SECONDS
                ),
            );
        }
    }
    if let Some(h) = &p.health_path {
        if !h.starts_with('/') {
            err("health_path", false, format!("`{h}` must start with `/`"));
        }
    }
}
