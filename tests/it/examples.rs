//! The examples in `examples/` build (clippy --all-targets checks them) and run: each is a
//! program a library user copies, so it must work as shipped.
use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // Cheap when they are up to date (`cargo test --all-targets` built them already).
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--examples"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --examples failed");
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(example(name))
        .args(args)
        // No user config: the examples use what they say they use.
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{name}: {so}\n{se}");
    (so, se)
}

#[test]
fn chat_answers_on_the_shipped_config() {
    let (out, _) = run("chat", &["hello"]);
    // With no vLLM and no Ollama here, the fallback chain ends at the built-in simulator.
    assert!(out.contains("built-in simulator"), "{out}");
}

#[test]
fn fallback_prints_the_refused_attempt_and_the_route_that_served() {
    let (out, _) = run("fallback", &[]);
    assert!(
        out.contains("attempt failed: route primary") && out.contains("(connect)"),
        "{out}"
    );
    assert!(out.contains("served by route backup"), "{out}");
    assert!(out.contains("answer: "), "{out}");
}

#[test]
fn bench_prints_the_vllm_style_summary_of_50_requests() {
    let (out, _) = run("bench", &[]);
    assert!(out.contains("Serving Benchmark Result"), "{out}");
    let field = |label: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(label)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(field("Successful requests:"), 50.0);
    assert_eq!(field("Failed requests:"), 0.0);
    assert_eq!(field("Total generated tokens:"), 50.0 * 32.0);
}
