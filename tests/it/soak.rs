//! Soak runs against simulators that leak on purpose: the verdict fails on the rule that
//! broke (server RSS read from its process group, TTFT drift), and the same run without a
//! leak passes.
use crate::common::free_port;
use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(EXE)
        .current_dir(dir)
        .args(args)
        .env("ANORAG_STATE_DIR", dir.join("state"))
        .output()
        .unwrap()
}

/// A config with one simulator profile serving route `r`, started; the soak run's result.
fn soak(sim_args: &[&str], bench_args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra: Vec<String> = sim_args.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        d.path().join("dashboard.yaml"),
        format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      r: {{base_url: \"http://127.0.0.1:{port}/v1\", model: qwen2_5_0_5b}}\nservers:\n  s: {{kind: sim, model: qwen2_5_0_5b, port: {port}, route: r, stop_timeout: 5, extra_args: [{}]}}\n",
            extra.join(", ")
        ),
    )
    .unwrap();
    let up = cli(
        d.path(),
        &["server", "start", "s", "--wait", "--timeout", "60"],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let mut args = vec![
        "bench",
        "--route",
        "r",
        "--soak",
        "--concurrency",
        "2",
        "--input-len",
        "8",
        "--output-len",
        "8",
        "--json",
        "--no-progress",
    ];
    args.extend_from_slice(bench_args);
    let out = cli(d.path(), &args);
    let _ = cli(d.path(), &["server", "stop", "s"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), v, stderr)
}

fn failed_rules(v: &serde_json::Value) -> Vec<String> {
    v["soak"]["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pass"] == false)
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// Timing rules wide open: these runs judge memory, and a busy machine must not fail them.
const LOOSE_TIMING: [&str; 4] = [
    "--soak-rule",
    "tps_retention=0",
    "--soak-rule",
    "ttft_p99_ratio=1000000",
];

#[test]
fn a_leaking_server_fails_the_rss_rule_and_a_steady_one_passes() {
    let sim = ["--ttft-ms", "5", "--itl-ms", "1", "--tokens", "8"];
    let mut leak_args = sim.to_vec();
    leak_args.extend(["--leak-mib-per-min", "1200"]);
    let mut bench = vec![
        "--duration",
        "6",
        "--soak-window",
        "2",
        "--soak-rule",
        "rss_growth_mib=20",
    ];
    bench.extend(LOOSE_TIMING);
    let (code, v, stderr) = soak(&leak_args, &bench);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        failed_rules(&v),
        ["rss_growth_mib"],
        "{}",
        v["soak"]["verdict"]
    );
    let windows = v["soak"]["windows"].as_array().unwrap();
    assert!(windows.len() >= 3, "{windows:?}");
    assert!(
        windows
            .iter()
            .all(|w| w["memory"]["rss_bytes"].as_u64().unwrap_or(0) > 0),
        "{windows:?}"
    );
    assert!(stderr.contains("soak FAIL: rss_growth_mib +"), "{stderr}");
    assert!(stderr.contains("process group"), "{stderr}");

    let (code, v, stderr) = soak(&sim, &bench);
    assert_eq!(code, Some(0), "{stderr}\n{}", v["soak"]["verdict"]);
    assert!(v["soak"]["verdict"]["pass"].as_bool().unwrap());
    assert!(stderr.contains("soak PASS"), "{stderr}");
}

#[test]
fn a_server_that_slows_down_fails_the_ttft_rule() {
    // 200 ms more before each first token for every second of uptime.
    let sim = [
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--tokens",
        "8",
        "--slowdown-per-min",
        "12000",
    ];
    let (code, v, stderr) = soak(
        &sim,
        &[
            "--duration",
            "10",
            "--soak-window",
            "2",
            "--soak-rule",
            "tps_retention=0",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        failed_rules(&v),
        ["ttft_p99_ratio"],
        "{}",
        v["soak"]["verdict"]
    );
}
