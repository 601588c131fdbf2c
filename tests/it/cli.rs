//! The headless commands as a user runs them: the real binary, its exit codes and output.
use crate::common;

use common::free_port;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anorag-tui"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    // The shipped config reads these; point them at ports nothing listens on, so a vLLM or
    // Ollama running on this machine cannot change what the test sees.
    c.env(
        "TINY_QWEN_URL",
        format!("http://127.0.0.1:{}/v1", free_port()),
    );
    c.env(
        "OLLAMA_HOST_URL",
        format!("http://127.0.0.1:{}", free_port()),
    );
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn chat_on_the_shipped_config_is_answered_by_the_builtin_route_and_says_so() {
    let out = bin().args(["chat", "hello"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("This answer comes from the anorag-tui built-in simulator"),
        "{stdout}"
    );
    assert!(
        stderr.contains("route tiny_qwen failed (connect)"),
        "{stderr}"
    );
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(stderr.contains("served by route builtin"), "{stderr}");
    assert!(stderr.contains("TTFT"), "{stderr}");
    assert!(!stdout.contains("[anorag]"), "diagnostics stay off stdout");
}

#[test]
fn chat_json_has_the_documented_fields() {
    let out = bin()
        .args(["chat", "--json", "--max-tokens", "5", "hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["served_by"], "builtin");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["timings"]["ttft_ms"].as_f64().unwrap() > 0.0);
    assert!(v["timings"]["e2e_ms"].as_f64().unwrap() >= v["timings"]["ttft_ms"].as_f64().unwrap());
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["route"], "tiny_qwen");
    assert_eq!(attempts[0]["class"], "connect");
    assert!(attempts[0]["message"].as_str().unwrap().contains("refused"));
    assert_eq!(v["text"].as_str().unwrap().split(' ').count(), 5);
}

#[test]
fn chat_reads_the_prompt_from_stdin_and_takes_a_system_prompt() {
    let out = crate::common::output_with_stdin(
        bin().args(["chat", "--json", "--system", "be brief", "--no-stream", "-"]),
        b"one two three four five",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Two messages (system + user) of 2 and 5 words: the simulator's stand-in tokenizer.
    assert_eq!(v["usage"]["prompt_tokens"], 2 + 4 + 5 + 4 + 3);
}

#[test]
fn chat_with_an_adhoc_target_and_a_bad_url_names_the_flag() {
    let out = bin()
        .args([
            "chat",
            "--provider",
            "vllm_openai",
            "--base-url",
            "http://127.0.0.1:1",
            "--model",
            "m",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--base-url") && stderr.contains("/v1"),
        "{stderr}"
    );
}

#[test]
fn chat_failure_exits_1_with_route_and_status() {
    let port = free_port();
    let out = bin()
        .args([
            "chat",
            "--provider",
            "ollama",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--model",
            "m",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("route `ollama` failed: connect"),
        "{stderr}"
    );
}

#[test]
fn config_check_exit_codes() {
    let ok = bin().args(["config", "check"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = format!(
        "{}/tests/fixtures/config/bad/04_unknown_default.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = bin()
        .args(["config", "check", "--config", &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "04_unknown_default.yaml:6:20: llm.vllm_openai.default_route: unknown route `tiny`"
        ),
        "{stderr}"
    );
}

#[test]
fn config_check_finds_a_remapped_key_that_clashes_with_a_default() {
    let bad = format!(
        "{}/tests/fixtures/config/key_clash_with_default.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = bin()
        .args(["config", "check", "--config", &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "key_clash_with_default.yaml:7:12: tui.keys.start: `x` is already the key of `stop` (Servers pane)"
        ),
        "{stderr}"
    );
}

#[test]
fn routes_json_probes_every_route() {
    let out = bin()
        .args(["routes", "--json", "--timeout", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let routes = v.as_array().unwrap();
    let by = |n: &str| routes.iter().find(|r| r["route"] == n).unwrap().clone();
    assert_eq!(by("tiny_qwen")["targets"][0]["state"], "down");
    assert!(by("tiny_qwen")["targets"][0]["error"]
        .as_str()
        .unwrap()
        .contains("refused"));
    assert_eq!(by("tiny_qwen")["default"], true);
    let b = by("builtin");
    assert_eq!(b["targets"][0]["state"], "up");
    assert!(b["targets"][0]["latency_ms"].as_f64().is_some());
    assert_eq!(b["targets"][0]["models"][0], "anorag-sim");
}

#[test]
fn gpu_without_a_gpu_exits_0_and_says_so() {
    let out = bin().args(["gpu"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("local: "), "{text}");
    let out = bin().args(["gpu", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let local = &v["sources"][0];
    assert_eq!(local["source"], "local");
    assert!(local["status"].is_string());
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return;
    }
    assert_ne!(local["status"], "ok", "this machine has no NVIDIA device");
    assert_eq!(local["devices"].as_array().unwrap().len(), 0);
}

#[test]
fn gpu_watch_repeats_and_stops_after_count() {
    let out = bin()
        .args([
            "gpu",
            "--json",
            "--watch",
            "--interval",
            "0.2",
            "--count",
            "3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn status_json_puts_servers_routes_and_gpu_in_one_view() {
    let state = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["status", "--json"])
        .env("ANORAG_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let servers = v["servers"].as_array().unwrap();
    assert!(servers
        .iter()
        .any(|s| s["name"] == "demo" && s["state"] == "stopped"));
    let routes = v["routes"].as_array().unwrap();
    let builtin = routes.iter().find(|r| r["route"] == "builtin").unwrap();
    assert_eq!(builtin["targets"][0]["state"], "up");
    // The built-in route is the vLLM-flavoured simulator: vLLM's own numbers are there.
    let m = &builtin["targets"][0]["metrics"];
    for k in common::VLLM_METRIC_KEYS {
        assert!(m[k].is_number(), "{k} in {m}");
    }
    assert!(v["gpu"][0]["status"].is_string());
    assert!(v["host"]["memory_total_bytes"].as_u64().unwrap() > 0);
    let human = bin()
        .args(["status"])
        .env("ANORAG_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(0), "{human:?}");
    let text = String::from_utf8_lossy(&human.stdout);
    for section in ["HOST", "SERVERS", "ROUTES", "GPU"] {
        assert!(text.contains(section), "{text}");
    }
}

/// Numbers no timer can hold, and counts that are not whole, are refused with the flag named
/// and exit code 2 (they used to panic, or hang with nothing in flight).
#[test]
fn unusable_numbers_are_refused_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["bench", "--timeout", "inf"],
            "'--timeout <TIMEOUT>': `inf` is not a number of seconds",
        ),
        (
            &["bench", "--duration", "1e20"],
            "'--duration <DURATION>': `1e20` is not a number of seconds",
        ),
        (&["bench", "--idle-timeout", "NaN"], "--idle-timeout"),
        (
            &["bench", "--rate", "0"],
            "'--rate <RATE>': `0` is not a rate",
        ),
        (
            &["bench", "--concurrency", "0.5"],
            "'--concurrency <CONCURRENCY>': `0.5` is not a whole number",
        ),
        (
            &["bench", "--sweep", "concurrency=0.5"],
            "--sweep `concurrency=0.5`: `0.5` is not a whole number",
        ),
        (
            &["bench", "--sweep", "rate=1,inf"],
            "--sweep `rate=1,inf`: `inf` is not a rate",
        ),
        (&["bench", "--range-ratio", "1"], "--range-ratio"),
        (
            &["server", "stop", "demo", "--timeout", "inf"],
            "'--timeout <TIMEOUT>': `inf`",
        ),
        (
            &["server", "start", "demo", "--timeout=-1"],
            "`-1` is not a number of seconds",
        ),
        (
            &["gpu", "--interval", "0"],
            "'--interval <INTERVAL>': `0` is not a number of seconds from 0.1",
        ),
        (&["status", "--interval", "inf"], "--interval"),
        (&["routes", "--timeout", "1e300"], "--timeout"),
        (&["chat", "--temperature", "9", "hi"], "--temperature"),
        (&["chat", "--max-tokens", "0", "hi"], "--max-tokens"),
    ];
    for (args, want) in cases {
        let out = bin().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// With --rate, a concurrency sweep caps the requests in flight of the open loop at each step
/// (it used to drop the rate silently and run closed loops).
#[test]
fn a_concurrency_sweep_keeps_the_rate() {
    #[derive(clap::Parser)]
    struct Bench {
        #[command(flatten)]
        a: anorag::cli::bench::BenchArgs,
    }
    use clap::Parser;
    let b = Bench::try_parse_from([
        "bench",
        "--rate",
        "20",
        "--sweep",
        "concurrency=1,4",
        "--requests",
        "5",
    ])
    .unwrap();
    let plans = anorag::cli::bench::plans(&b.a).unwrap();
    assert_eq!(plans.len(), 2);
    for (p, cap) in plans.iter().zip([1, 4]) {
        match p.load {
            anorag::bench::Load::Open {
                rate,
                max_concurrency,
                ..
            } => assert_eq!((rate, max_concurrency), (20.0, Some(cap))),
            other => panic!("{other:?}"),
        }
    }
}

/// `--base-url` alone: the server is asked what it speaks, the choice is said, and the only
/// model is taken when `--model` is not given.
#[test]
fn base_url_without_provider_finds_the_dialect() {
    struct Sim(std::process::Child);
    impl Drop for Sim {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    for (flavor, path, said) in [
        (
            "vllm",
            "/v1",
            "vllm_openai (OpenAI-compatible, and GET /version answered vLLM",
        ),
        (
            "openai",
            "/v1",
            "openai (the URL ends in /v1 and /version is not vLLM's)",
        ),
        ("ollama", "", "ollama (GET /api/version answered Ollama"),
    ] {
        let port = free_port();
        let _sim = Sim(bin()
            .args([
                "sim",
                "--flavor",
                flavor,
                "--port",
                &port.to_string(),
                "--model",
                "m1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap());
        let url = format!("http://127.0.0.1:{port}{path}");
        let up = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "{flavor}: the simulator did not come up");
        let out = bin()
            .args(["chat", "--json", "--base-url", &url, "hello"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flavor}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--base-url {url}: {said}")),
            "{flavor}: {stderr}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["target"]["model"], "m1", "{flavor}: {v}");
    }
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = bin()
        .args(["chat", "--base-url", &dead, "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --provider"));
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _anorag__tui"),
        ("zsh", "#compdef anorag-tui"),
        ("fish", "complete -c anorag-tui"),
    ] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        assert!(
            text.contains("bench") && text.contains("no-autostart"),
            "{shell}"
        );
    }
    let bad = bin().args(["completions", "cmd.exe"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
