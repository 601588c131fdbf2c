//! A soak verdict on the real vLLM: the rules read its real memory, from its process group
//! when the supervisor runs it, from its own `/metrics` when it is only a route.
//! Skipped with a printed reason only when ANORAG_VLLM_BIN is unset; `.ci/run` sets it.
use crate::common::{free_port, group_members, RealVllmEnv};
use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

fn cli(dir: &Path, config: &str, args: &[&str]) -> Output {
    Command::new(EXE)
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join(config))
        .args(args)
        .env("ANORAG_STATE_DIR", dir.join(format!("state-{config}")))
        .output()
        .unwrap()
}

/// Timing rules wide open (a loaded CPU server's pace is not what this checks).
const SOAK: [&str; 19] = [
    "bench",
    "--route",
    "r",
    "--soak",
    "--duration",
    "12",
    "--soak-window",
    "4",
    "--concurrency",
    "2",
    "--input-len",
    "16",
    "--output-len",
    "16",
    "--json",
    "--no-progress",
    "--soak-rule",
    "tps_retention=0",
    "--soak-rule",
];

fn soak(dir: &Path, config: &str) -> serde_json::Value {
    let mut args = SOAK.to_vec();
    args.push("ttft_p99_ratio=1000000");
    let out = cli(dir, config, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    eprintln!(
        "[real-vllm] soak ({config}): {}",
        stderr.lines().last().unwrap_or("")
    );
    v
}

#[test]
fn real_vllm_soak_verdict_reads_its_real_memory() {
    let Some(env) = RealVllmEnv::from_env("real_vllm_soak_verdict_reads_its_real_memory") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let route = format!("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      r: {{base_url: \"http://127.0.0.1:{port}/v1\", model: tiny}}\n");
    std::fs::write(d.path().join("managed.yaml"), format!(
        "{route}servers:\n  v: {{kind: vllm, executable: {}, model: {}, served_model_name: tiny, port: {port}, route: r, max_model_len: 512, enforce_eager: true, stop_timeout: 30}}\n",
        env.bin, env.model
    )).unwrap();
    std::fs::write(d.path().join("route-only.yaml"), &route).unwrap();
    let up = cli(
        d.path(),
        "managed.yaml",
        &["server", "start", "v", "--wait", "--timeout", "300"],
    );
    let st: serde_json::Value = serde_json::from_slice(
        &cli(
            d.path(),
            "managed.yaml",
            &["server", "status", "v", "--json"],
        )
        .stdout,
    )
    .unwrap();
    let stop = || {
        let _ = cli(
            d.path(),
            "managed.yaml",
            &["server", "stop", "v", "--timeout", "10"],
        );
        if let Some(pg) = st["pgid"].as_i64() {
            for p in group_members(pg as i32) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    };
    if !up.status.success() {
        stop();
        panic!("{}", String::from_utf8_lossy(&up.stderr));
    }
    let managed = soak(d.path(), "managed.yaml");
    let remote = soak(d.path(), "route-only.yaml");
    stop();
    for (v, from) in [(&managed, "process group"), (&remote, "/metrics")] {
        let s = &v["soak"];
        let windows = s["windows"].as_array().unwrap();
        assert!(windows.len() >= 3, "{s}");
        for w in windows {
            let m = &w["memory"];
            assert!(m["source"].as_str().unwrap_or("").contains(from), "{w}");
            // vLLM's API server alone holds far more than 100 MiB.
            assert!(m["rss_bytes"].as_u64().unwrap_or(0) > 100 << 20, "{w}");
        }
        let rss = s["verdict"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "rss_growth_mib")
            .unwrap();
        assert!(rss["pass"].is_boolean(), "measured: {rss}");
        assert_eq!(v["failed"], 0, "{v}");
    }
}
