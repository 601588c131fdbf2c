//! The real vLLM against what `models` lists and what `models fit` predicts, and every
//! start-up failure it can show on this machine explained in one line.
//! Skipped with a printed reason only when ANORAG_VLLM_BIN is unset; `.ci/run` sets it.
use crate::common::{self, free_port, group_members, RealVllmEnv};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(servers: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      r: {{base_url: \"http://127.0.0.1:9/v1\", model: m}}\nservers:\n{servers}"
        );
        std::fs::write(dir.path().join("dashboard.yaml"), yaml).unwrap();
        Dir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(EXE)
            .current_dir(self.path())
            .args(args)
            .env("ANORAG_STATE_DIR", self.path().join("state"))
            .env("HF_HUB_CACHE", self.path().join("hub"))
            .output()
            .unwrap()
    }

    fn status(&self, name: &str) -> serde_json::Value {
        serde_json::from_slice(&self.cli(&["server", "status", name, "--json"]).stdout).unwrap()
    }

    fn stop_all(&self, names: &[&str]) {
        for n in names {
            let st = self.status(n);
            if st["state"] != "exited" && st["state"] != "crashed" && st["state"] != "stopped" {
                let _ = self.cli(&["server", "stop", n, "--timeout", "5"]);
            }
            if let Some(pg) = st["pgid"].as_i64() {
                for p in group_members(pg as i32) {
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
        }
    }
}

/// The tiny model laid out as the hub cache keeps it: blobs, a snapshot of relative
/// symlinks, and refs/main.
fn hub_cache(model: &Path, root: &Path) -> PathBuf {
    let repo = root.join("models--anorag--tiny");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    for (i, e) in std::fs::read_dir(model).unwrap().flatten().enumerate() {
        let hash = format!("{i:064x}");
        std::fs::copy(e.path(), repo.join("blobs").join(&hash)).unwrap();
        symlink(format!("../../blobs/{hash}"), snap.join(e.file_name())).unwrap();
    }
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    repo
}

/// `CPU KV cache size: 1,048,576 tokens` -> 1048576, from vLLM's start-up log.
fn logged_kv_tokens(log: &str) -> Option<u64> {
    let at = log.find("KV cache size: ")? + "KV cache size: ".len();
    let digits: String = log[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn real_vllm_serves_a_model_found_in_the_hub_cache_and_sizes_its_kv_as_estimated() {
    let Some(env) = RealVllmEnv::from_env("real_vllm_serves_a_model_found_in_the_hub_cache") else {
        return;
    };
    let port = free_port();
    let d = Dir::new(&format!(
        "  tiny:\n    kind: vllm\n    executable: {}\n    model: anorag/tiny\n    port: {port}\n    max_model_len: 2048\n    enforce_eager: true\n    stop_timeout: 30\n    env: {{HF_HUB_OFFLINE: \"1\", VLLM_CPU_KVCACHE_SPACE: \"1\"}}\n",
        env.bin
    ));
    hub_cache(Path::new(&env.model), &d.path().join("hub"));
    let listed: serde_json::Value =
        serde_json::from_slice(&d.cli(&["models", "--json"]).stdout).unwrap();
    let m = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anorag/tiny")
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(m["used_by"], serde_json::json!(["tiny"]));
    assert_eq!(m["shape"]["layers"], 2);

    let predicted: serde_json::Value = serde_json::from_slice(
        &d.cli(&[
            "models",
            "fit",
            "anorag/tiny",
            "--cpu-kv-cache",
            "1GiB",
            "--max-model-len",
            "2048",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let out = d.cli(&["server", "start", "tiny", "--wait", "--timeout", "300"]);
    let st = d.status("tiny");
    d.stop_all(&["tiny"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(st.get("fit_warning").is_none(), "{st}");
    let log = std::fs::read_to_string(st["log_path"].as_str().unwrap()).unwrap();
    let logged = logged_kv_tokens(&log).expect("vLLM logs its KV cache size");
    let ours = predicted["fit"]["kv_tokens"].as_u64().unwrap();
    let err = (ours as f64 - logged as f64).abs() / logged as f64;
    eprintln!(
        "[real-vllm] KV cache: vLLM {logged} tokens, our estimate {ours} ({:.2}% off)",
        err * 100.0
    );
    assert!(err <= 0.05, "estimate {ours} vs vLLM's {logged}");
}

#[test]
fn real_vllm_failed_starts_are_each_explained_in_one_line() {
    let Some(env) = RealVllmEnv::from_env("real_vllm_failed_starts_are_each_explained_in_one_line")
    else {
        return;
    };
    let bin = &env.bin;
    let model = &env.model;
    let base = format!("kind: vllm, executable: {bin}, enforce_eager: true, stop_timeout: 10");
    // (profile, its settings, the one line wanted, what the fit estimate says before the start)
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        ("toolong", format!("{{{base}, model: {model}, port: {}, max_model_len: 100000}}", free_port()),
            "max_model_len 100000 is above the model's limit of 4096", Some("above the model's limit of 4096")),
        ("kvsmall", format!("{{{base}, model: {model}, port: {}, max_model_len: 2000000, env: {{VLLM_ALLOW_LONG_MAX_MODEL_LEN: \"1\", VLLM_CPU_KVCACHE_SPACE: \"1\"}}}}", free_port()),
            "set --max-model-len 1048448 (the longest that fits)", Some("the longest that fits is 1,048,448")),
        ("badid", format!("{{{base}, model: no/such/model, port: {}}}", free_port()),
            "model `no/such/model` is neither a folder on this machine nor a hub id", None),
        ("absent", format!("{{{base}, model: anorag/absent, port: {}, env: {{HF_HUB_OFFLINE: \"1\"}}}}", free_port()),
            "not in the local cache and downloads are off", None),
        ("badarg", format!("{{{base}, model: {model}, port: {}, extra_args: [--bogus-flag, \"3\"]}}", free_port()),
            "does not know the argument(s) --bogus-flag 3", None),
    ];
    let servers: String = cases
        .iter()
        .map(|(n, p, _, _)| format!("  {n}: {p}\n"))
        .collect();
    let d = Dir::new(&servers);
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let mut wrong = Vec::new();
    for (name, _, want, fit_warning) in &cases {
        let out = d.cli(&["server", "start", name, "--wait", "--timeout", "300"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let st = d.status(name);
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("")
            .to_string();
        eprintln!("[real-vllm] {name}: {first}");
        if out.status.success()
            || !first.contains(want)
            || !st["failure"].as_str().unwrap_or("").contains(want)
        {
            wrong.push(format!(
                "{name}: want `{want}`\n  got: {first}\n  status: {st}"
            ));
        }
        if let Some(w) = fit_warning {
            if !st["fit_warning"].as_str().unwrap_or("").contains(w) {
                wrong.push(format!(
                    "{name}: the fit estimate should have warned `{w}` before the start: {st}"
                ));
            }
        }
        if first.contains("Engine core initialization failed") {
            wrong.push(format!("{name}: the wrapper line is never the cause"));
        }
    }
    d.stop_all(&names);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// vLLM's own output, as the monitor's log holds it (our start line, then the server's).
fn vllm_output(env: &RealVllmEnv, extra: &[&str]) -> (bool, Vec<String>) {
    let mut argv = vec![
        env.bin.as_str(),
        "serve",
        env.model.as_str(),
        "--host",
        "127.0.0.1",
    ];
    argv.extend_from_slice(extra);
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .env("VLLM_CPU_KVCACHE_SPACE", "1")
        .output()
        .unwrap();
    let mut lines = vec![format!(
        "[anorag-tui 2026-12-06T00:00:00Z] started pid 1: {}",
        argv.join(" ")
    )];
    lines.extend(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from),
    );
    lines.extend(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(String::from),
    );
    (out.status.success(), lines)
}

/// Two failures the supervisor stops before vLLM runs (its pre-flight check names a busy
/// port's holder; a tensor parallel size above the GPUs there are), so vLLM's own words for
/// them are taken from the real server run by hand.
#[test]
fn real_vllm_failures_caught_before_the_start_are_still_explained_from_vllms_words() {
    let Some(env) = RealVllmEnv::from_env("real_vllm_failures_caught_before_the_start") else {
        return;
    };
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let d = Dir::new(&format!(
        "  p: {{kind: vllm, executable: {}, model: {}, host: 127.0.0.1, port: {port}}}\n  t: {{kind: vllm, executable: {}, model: {}, port: {}, tensor_parallel_size: 3}}\n",
        env.bin, env.model, env.bin, env.model, free_port()
    ));
    let pre = d.cli(&["server", "start", "p"]);
    let pre_err = String::from_utf8_lossy(&pre.stderr);
    assert!(
        !pre.status.success()
            && pre_err.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{pre_err}"
    );
    let (ok, lines) = vllm_output(&env, &["--port", &port]);
    drop(busy);
    assert!(!ok);
    assert_eq!(
        anorag::supervisor::explain::explain(&lines).as_deref(),
        Some(
            format!("port {port} is already in use: pick another port, or stop what holds it")
                .as_str()
        ),
        "{}",
        lines.join("\n")
    );
    let fit = d.cli(&["server", "start", "t", "--require-fit"]);
    let fit_err = String::from_utf8_lossy(&fit.stderr);
    assert!(
        !fit.status.success() && fit_err.contains("divisible by tensor parallel size (3)"),
        "{fit_err}"
    );
    let (ok, lines) = vllm_output(
        &env,
        &[
            "--port",
            &free_port().to_string(),
            "--tensor-parallel-size",
            "3",
        ],
    );
    assert!(!ok);
    assert_eq!(
        anorag::supervisor::explain::explain(&lines).as_deref(),
        Some("4 attention heads cannot be split over tensor parallel size 3: choose a --tensor-parallel-size that divides 4"),
        "{}",
        lines.join("\n")
    );
}

/// Stops what a test started, whatever happened to it.
struct StopAll<'a>(&'a Dir, &'a [&'a str]);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        self.0.stop_all(self.1);
    }
}

#[test]
fn real_vllm_starts_from_the_models_pane_without_a_yaml_edit() {
    let Some(env) =
        RealVllmEnv::from_env("real_vllm_starts_from_the_models_pane_without_a_yaml_edit")
    else {
        return;
    };
    let d = Dir::new(&format!(
        "  other: {{kind: vllm, executable: {}, model: /nowhere/model, port: {}}}\n",
        env.bin,
        free_port()
    ));
    hub_cache(Path::new(&env.model), &d.path().join("hub"));
    let cfg = d.path().join("dashboard.yaml");
    let before = std::fs::read(&cfg).unwrap();
    let _stop = StopAll(&d, &["tiny"]);
    let state = d.path().join("state");
    let hub = d.path().join("hub");
    let mut c = common::console::Console::spawn(
        &["--config", cfg.to_str().unwrap()],
        d.path(),
        &[
            ("ANORAG_STATE_DIR", state.to_str().unwrap()),
            ("HF_HUB_CACHE", hub.to_str().unwrap()),
            ("HF_HUB_OFFLINE", "1"),
            ("VLLM_CPU_KVCACHE_SPACE", "1"),
        ],
        32,
        120,
    );
    c.wait_for("1 Servers", 30);
    c.send(b"9");
    c.wait_for("anorag/tiny", 30);
    c.send(b"\r");
    c.wait_for("Launch anorag/tiny", 10);
    c.wait_for("fits: room for", 10);
    let port = free_port().to_string();
    c.send(b"Gk\r\x15");
    c.send(port.as_bytes());
    c.send(b"\r");
    c.wait_for(&format!("port {port}"), 10);
    c.send(b"s");
    c.send(b"1");
    c.wait_for("tiny", 10);
    c.wait_for("ready", 300);
    let st = d.status("tiny");
    assert_eq!(st["state"], "ready", "{st}");
    assert_eq!(
        st["port"].as_u64().map(|p| p.to_string()),
        Some(port),
        "{st}"
    );
    assert_eq!(std::fs::read(&cfg).unwrap(), before, "no YAML was edited");
    assert!(!d.path().join("servers.d").exists());
    // q asks about the server started here; y stops it.
    c.send(b"q");
    c.wait_for("Quit", 10);
    c.send(b"y");
    assert!(c.wait_exit(120).success());
    let st = d.status("tiny");
    assert!(
        !["ready", "starting", "stopping"].contains(&st["state"].as_str().unwrap_or("")),
        "{st}"
    );
}
