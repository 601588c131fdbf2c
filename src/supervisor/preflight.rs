//! Checks made before anything starts, each failing with an error that names the server, the
//! setting at fault and what to do: the port, the executable, the model path, the GPUs.
use super::launch::{model_path, LaunchSpec};
use crate::config::{ServerKind, ServerProfile};
use crate::procfs;
use crate::telemetry::gpu::GpuStatus;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server `{server}`: {message}")]
pub struct PreflightError {
    pub server: String,
    pub message: String,
}

/// How many GPUs are present (NVML's count; zero when there is no driver).
pub type GpuCount = (u32, GpuStatus);

/// Every check; the first failure is returned.
pub fn check(
    spec: &LaunchSpec,
    profile: &ServerProfile,
    base_dir: &Path,
    gpus: impl FnOnce() -> GpuCount,
) -> Result<(), PreflightError> {
    let fail = |message: String| PreflightError {
        server: spec.name.clone(),
        message,
    };
    executable(spec).map_err(fail)?;
    if let Some(var) = &profile.api_key_env {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            return Err(fail(format!(
                "api_key_env names `{var}`, which is not set here; the server would start without authentication"
            )));
        }
    }
    if profile.kind == ServerKind::Vllm {
        if let Some(m) = profile.model.as_deref() {
            if let Some(path) = model_path(m, base_dir) {
                if !path.exists() {
                    return Err(fail(format!(
                        "model path `{}` does not exist (servers.{}.model)",
                        path.display(),
                        spec.name
                    )));
                }
            }
        }
    }
    gpu_fit(profile, gpus).map_err(fail)?;
    port_free(&spec.host, spec.port).map_err(fail)?;
    Ok(())
}

/// Finds `argv[0]` as the child would: a path as given (relative to the server's folder), or
/// a name on PATH (the profile's own PATH if it sets one).
pub fn resolve_executable(spec: &LaunchSpec) -> Result<PathBuf, String> {
    let exe = spec.argv.first().ok_or("the command line is empty")?;
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if exe.contains('/') {
        let p = if Path::new(exe).is_absolute() {
            PathBuf::from(exe)
        } else {
            spec.cwd.join(exe)
        };
        return if is_exec(&p) {
            Ok(p)
        } else if p.exists() {
            Err(format!("`{}` is not an executable file", p.display()))
        } else {
            Err(format!("executable `{}` not found", p.display()))
        };
    }
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(exe))
        .find(|p| is_exec(p))
        .ok_or_else(|| format!("executable `{exe}` not found on PATH"))
}

fn executable(spec: &LaunchSpec) -> Result<(), String> {
    resolve_executable(spec).map(|_| ()).map_err(|e| {
        let hint = match spec.kind {
            ServerKind::Vllm => format!(
                " (install vLLM, or set servers.{}.executable to the `vllm` command)",
                spec.name
            ),
            ServerKind::Command => format!(" (servers.{}.command)", spec.name),
            ServerKind::Sim | ServerKind::Gateway => String::new(),
        };
        format!("{e}{hint}")
    })
}

fn gpu_fit(p: &ServerProfile, gpus: impl FnOnce() -> GpuCount) -> Result<(), String> {
    let world = p.tensor_parallel_size.unwrap_or(1) * p.pipeline_parallel_size.unwrap_or(1);
    let multi_node = p.distributed_executor_backend.as_deref() == Some("ray");
    if p.gpus.is_none() && (world <= 1 || multi_node) {
        // One device or none (vLLM's CPU build), or Ray places the workers across nodes.
        return Ok(());
    }
    let (count, status) = gpus();
    if let Some(list) = &p.gpus {
        if let Some(bad) = list.iter().find(|&&i| i >= count) {
            return Err(if count == 0 {
                format!(
                    "`gpus` asks for GPU {bad} but this machine has none ({})",
                    status.describe()
                )
            } else {
                format!(
                    "`gpus` asks for GPU {bad} but this machine has {count} (0..{})",
                    count - 1
                )
            });
        }
    }
    let visible = p.gpus.as_ref().map_or(count, |l| l.len() as u32);
    if world > visible && !multi_node {
        return Err(format!(
            "tensor_parallel_size × pipeline_parallel_size is {world} but {visible} GPU(s) are available{}",
            if count == 0 { format!(" ({})", status.describe()) } else { String::new() }
        ));
    }
    Ok(())
}

fn port_free(host: &str, port: u16) -> Result<(), String> {
    let bind_host = host.trim_start_matches('[').trim_end_matches(']');
    match std::net::TcpListener::bind((bind_host, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let who = procfs::port_owner(port)
                .map(|pid| {
                    let cmd = procfs::cmdline(pid).unwrap_or_default();
                    let cmd: String = cmd.chars().take(80).collect();
                    format!(" by pid {pid} `{cmd}`")
                })
                .unwrap_or_default();
            Err(format!("port {port} on {host} is already in use{who}"))
        }
        Err(e) => Err(format!("cannot bind {host}:{port}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_profile as profile;

    #[test]
    fn gpu_requests_beyond_what_is_present_are_refused() {
        let none = || (0, GpuStatus::NoLibrary);
        let two = || (2, GpuStatus::Ok);
        assert!(
            gpu_fit(&profile("kind: vllm\nmodel: m\nport: 1"), none).is_ok(),
            "CPU vLLM needs no GPU"
        );
        let e = gpu_fit(&profile("kind: vllm\nmodel: m\nport: 1\ngpus: [0]"), none).unwrap_err();
        assert!(e.contains("has none") && e.contains("libnvidia-ml"), "{e}");
        let e = gpu_fit(
            &profile("kind: vllm\nmodel: m\nport: 1\ntensor_parallel_size: 4"),
            two,
        )
        .unwrap_err();
        assert!(e.contains("is 4 but 2 GPU(s)"), "{e}");
        let e = gpu_fit(&profile("kind: vllm\nmodel: m\nport: 1\ngpus: [1, 2]"), two).unwrap_err();
        assert!(e.contains("GPU 2 but this machine has 2"), "{e}");
        assert!(gpu_fit(
            &profile("kind: vllm\nmodel: m\nport: 1\ngpus: [0, 1]\ntensor_parallel_size: 2"),
            two
        )
        .is_ok());
        assert!(
            gpu_fit(&profile("kind: vllm\nmodel: m\nport: 1\ntensor_parallel_size: 8\ndistributed_executor_backend: ray"), none).is_ok(),
            "Ray spreads the workers over the cluster"
        );
    }

    #[test]
    fn a_busy_port_names_its_owner() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = port_free("127.0.0.1", port).unwrap_err();
        assert!(
            e.contains(&format!(
                "port {port} on 127.0.0.1 is already in use by pid {}",
                std::process::id()
            )),
            "{e}"
        );
        drop(l);
        assert!(port_free("127.0.0.1", port).is_ok());
    }
}
