//! What is known about one server's current or last run, as kept in the state directory.
use crate::procfs::Identity;
use serde::{Deserialize, Serialize};

/// The lifecycle (DESIGN.md §5). `Stopped` means no run is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    #[default]
    Stopped,
    Starting,
    Ready,
    Unhealthy,
    Stopping,
    /// Ended: asked to stop, or a clean exit (code 0).
    Exited,
    /// Ended without being asked, with a non-zero code or a signal.
    Crashed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Unhealthy => "unhealthy",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Crashed => "crashed",
        }
    }

    /// A process exists (or is being started or stopped).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            State::Starting | State::Ready | State::Unhealthy | State::Stopping
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// Distinguishes runs of the same profile; the starter waits for its own.
    pub run_id: String,
    pub state: State,
    pub kind: String,
    pub monitor: Option<Identity>,
    /// The server's main process (its pid is also its process group).
    pub server: Option<Identity>,
    pub pgid: Option<i32>,
    pub host: String,
    pub port: u16,
    pub health_url: String,
    pub route: Option<String>,
    pub model: Option<String>,
    /// The command line, secrets redacted.
    pub argv: Vec<String>,
    pub log_path: String,
    /// Unix seconds.
    pub started_at: Option<f64>,
    pub ready_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stop_requested: bool,
    /// Restarts made by the `on-failure` policy in this run.
    pub restarts: u32,
    /// The latest thing worth telling the operator (crash loop, health failure, ...).
    pub message: Option<String>,
    /// Consecutive failed health probes (while ready or unhealthy).
    pub health_failures: u32,
    /// Why the run ended before it was ready, in one line, from its log (`explain`).
    pub failure: Option<String>,
    /// The fit estimate said it would not fit (the verdict and what would).
    pub fit_warning: Option<String>,
    pub updated_at: f64,
}

/// Redacts values that look like secrets on a command line: the word after a flag that names
/// a key, token, secret or password, and `--flag=value` forms of the same.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    // Whole words only: `--hf-token` and `--api-key` are secrets, `--max-tokens` is not.
    fn secretish(flag: &str) -> bool {
        flag.trim_start_matches('-')
            .to_ascii_lowercase()
            .split(['-', '_'])
            .any(|w| {
                matches!(
                    w,
                    "key" | "apikey" | "token" | "secret" | "password" | "passwd" | "auth"
                )
            })
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for a in argv {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
            continue;
        }
        if a.starts_with('-') {
            if let Some((flag, _)) = a.split_once('=') {
                if secretish(flag) {
                    out.push(format!("{flag}=***"));
                    continue;
                }
            } else if secretish(a) {
                hide_next = true;
            }
        }
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_on_argv_are_redacted() {
        let argv: Vec<String> = [
            "vllm",
            "serve",
            "m",
            "--api-key",
            "sk-1",
            "--hf-token=hf_x",
            "--max-num-batched-tokens",
            "8192",
            "--port",
            "8001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_argv(&argv),
            [
                "vllm",
                "serve",
                "m",
                "--api-key",
                "***",
                "--hf-token=***",
                "--max-num-batched-tokens",
                "8192",
                "--port",
                "8001"
            ]
        );
    }
}
