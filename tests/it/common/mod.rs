//! Helpers shared by the integration tests.
#![allow(dead_code)]
pub mod console;

use std::time::{Duration, Instant};

/// vLLM's own numbers that `routes --json` reports under a target's `metrics`.
pub const VLLM_METRIC_KEYS: [&str; 5] = [
    "num_requests_running",
    "num_requests_waiting",
    "kv_cache_usage",
    "prompt_tokens_total",
    "generation_tokens_total",
];

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Says that `test` did not run and why: on stderr, and in the file `$ANORAG_SKIP_LOG` names
/// (scripts/test prints it, and fails when a tier it set up was skipped anyway).
/// Runs `cmd` with `input` on its standard input; its output and status.
pub fn output_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn skipped(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("ANORAG_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The real vLLM, when `../shared/tools/real-vllm/ensure.sh` has set it up.
pub struct RealVllmEnv {
    pub bin: String,
    pub model: String,
}

impl RealVllmEnv {
    /// `None` (after printing why) when the tier cannot run here.
    pub fn from_env(test: &str) -> Option<Self> {
        match (
            std::env::var("ANORAG_VLLM_BIN"),
            std::env::var("ANORAG_VLLM_MODEL"),
        ) {
            (Ok(bin), Ok(model)) if !bin.is_empty() && !model.is_empty() => {
                Some(Self { bin, model })
            }
            _ => {
                skipped(test, "ANORAG_VLLM_BIN or ANORAG_VLLM_MODEL is unset; run `eval \"$(../shared/tools/real-vllm/ensure.sh)\"` first (.ci/run does)");
                None
            }
        }
    }
}

/// Polls `url` until it answers 200, the deadline passes, or `alive` says the server died.
pub async fn wait_http_ok(
    url: &str,
    limit: Duration,
    mut alive: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if !alive() {
            return Err(format!("the server exited before {url} answered"));
        }
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return Ok(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("{url} did not answer 200 within {limit:?}"))
}

/// Every live (non-zombie) process whose process group is `pgid`, read from /proc.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if fields.len() > 3 && fields[0] != "Z" && fields[2].parse::<i32>().ok() == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Reads a pseudo-terminal's output on a thread of its own until it closes, handing each read
/// to `on` (a console under test writes whenever it draws).
pub fn pump(mut reader: Box<dyn std::io::Read + Send>, mut on: impl FnMut(&[u8]) + Send + 'static) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            on(&buf[..n]);
        }
    });
}

/// Runs one scenario of the official Python clients (tests/clients/gateway_clients.py) against
/// a gateway at `base`, asking for `model`; fails the test with their output unless they pass.
/// Returns what they printed.
pub async fn gateway_clients(
    py: &std::ffi::OsStr,
    scenario: &str,
    base: &str,
    model: &str,
) -> String {
    let script = format!(
        "{}/tests/clients/gateway_clients.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(py)
        .args([&script, scenario, base, model])
        .output()
        .await
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{scenario}: {so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// A gateway on a free loopback port, from a whole config's text (`gateway.listen` should
/// be `127.0.0.1:0`).
pub async fn gateway_from_yaml(yaml: &str) -> anorag::gateway::Running {
    let cfg = anorag::config::load_str(yaml, "gw.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let router = anorag::provider::factory::build(&cfg).await.unwrap();
    anorag::gateway::run(
        anorag::gateway::Settings::from_config(&cfg, None).unwrap(),
        anorag::gateway::Live::new(&cfg, router).unwrap(),
    )
    .await
    .unwrap()
}
