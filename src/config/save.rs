//! A launch profile made in the console (or by `server start --model`) and kept on request.
//! The user's file is never rewritten: the profile goes to `servers.d/NAME.yaml` beside it,
//! and the user's file only gains an `include:` entry at its end when it has none. Whatever
//! is written is loaded back through the whole config, and taken back if it does not load.
use super::schema::ServerProfile;
use std::path::{Path, PathBuf};

/// The folder saved profiles go to, beside the config.
pub const SAVED_DIR: &str = "servers.d";

/// What a launch form holds: the fields of a vLLM profile an operator sets by hand.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewProfile {
    pub name: String,
    pub model: String,
    pub served_model_name: Option<String>,
    pub host: Option<String>,
    pub port: u16,
    pub tensor_parallel_size: Option<u32>,
    pub max_model_len: Option<u64>,
    pub gpu_memory_utilization: Option<f64>,
    pub dtype: Option<String>,
    pub gpus: Option<Vec<u32>>,
    pub route: Option<String>,
    /// The `vllm` to run (default: `vllm` on PATH).
    pub executable: Option<String>,
    pub env: Vec<(String, String)>,
}

/// A server name from a model: `/models/Qwen2.5-7B-Instruct` or `Qwen/Qwen2.5-7B-Instruct`
/// -> `qwen2-5-7b-instruct`.
pub fn name_for(model: &str) -> String {
    let last = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model);
    let mut out = String::new();
    for c in last.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "model".into()
    } else {
        out
    }
}

/// The first port from 8000 that none of `taken` holds.
pub fn next_port(taken: &[u16]) -> u16 {
    (8000..=u16::MAX)
        .find(|p| !taken.contains(p))
        .unwrap_or(8000)
}

fn quote(s: &str) -> String {
    // JSON strings are YAML flow scalars: every character survives.
    serde_json::to_string(s).unwrap_or_default()
}

/// The profile as YAML under `servers:`, one key per line.
pub fn profile_yaml(p: &NewProfile) -> String {
    let mut y = format!(
        "servers:\n  {}:\n    kind: vllm\n    model: {}\n",
        p.name,
        quote(&p.model)
    );
    let mut line = |k: &str, v: String| y.push_str(&format!("    {k}: {v}\n"));
    if let Some(e) = &p.executable {
        line("executable", quote(e));
    }
    if let Some(s) = &p.served_model_name {
        line("served_model_name", quote(s));
    }
    if let Some(h) = &p.host {
        line("host", quote(h));
    }
    line("port", p.port.to_string());
    if let Some(v) = p.tensor_parallel_size {
        line("tensor_parallel_size", v.to_string());
    }
    if let Some(v) = p.max_model_len {
        line("max_model_len", v.to_string());
    }
    if let Some(v) = p.gpu_memory_utilization {
        line("gpu_memory_utilization", v.to_string());
    }
    if let Some(v) = &p.dtype {
        line("dtype", quote(v));
    }
    if let Some(g) = &p.gpus {
        line(
            "gpus",
            format!(
                "[{}]",
                g.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if let Some(r) = &p.route {
        line("route", quote(r));
    }
    if !p.env.is_empty() {
        y.push_str("    env:\n");
        for (k, v) in &p.env {
            y.push_str(&format!("      {k}: {}\n", quote(v)));
        }
    }
    y
}

/// The profile exactly as the YAML above reads back, so what starts is what would be saved.
pub fn to_profile(p: &NewProfile) -> Result<ServerProfile, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        servers: indexmap::IndexMap<String, ServerProfile>,
    }
    let d: Doc =
        serde_yaml::from_str(&profile_yaml(p)).map_err(|e| format!("profile {}: {e}", p.name))?;
    d.servers
        .into_values()
        .next()
        .ok_or_else(|| format!("profile {}: empty", p.name))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub file: PathBuf,
    /// The user's file gained `include: [servers.d]` at its end.
    pub included: bool,
}

/// The text appended to a config that has no `include:` yet.
pub fn include_block(text: &str) -> String {
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{sep}\n# Profiles saved from the console's Models pane, one file each.\ninclude:\n  - {SAVED_DIR}\n")
}

/// Whether the file has a top-level `include:` key.
fn has_include(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.starts_with("include:"))
        .map(|i| i + 1)
}

/// Saves the profile beside `config_file`; on any failure nothing is left changed.
pub fn save_profile(config_file: &Path, p: &NewProfile) -> Result<Saved, String> {
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "profile name `{}`: use letters, digits, `_` and `-`",
            p.name
        ));
    }
    let original = std::fs::read(config_file)
        .map_err(|e| format!("cannot read {}: {e}", config_file.display()))?;
    let text = String::from_utf8_lossy(&original).into_owned();
    let base = config_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let loaded =
        super::load(&super::Source::File(config_file.to_path_buf())).map_err(|e| e.to_string())?;
    if loaded.servers.contains_key(&p.name) {
        return Err(format!(
            "a profile `{}` already exists: pick another name",
            p.name
        ));
    }
    let lists_dir = loaded
        .include
        .iter()
        .any(|i| i.trim_end_matches('/') == SAVED_DIR);
    if !lists_dir {
        if let Some(line) = has_include(&text) {
            return Err(format!(
                "{}:{line}: this file has its own `include:`; add `- {SAVED_DIR}` to it and save again",
                config_file.display()
            ));
        }
    }
    let dir = base.join(SAVED_DIR);
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join(format!("{}.yaml", p.name));
    let body = format!(
        "# Saved by anorag-tui from its Models pane. Edit freely; it is loaded through `include:`.\n{}",
        profile_yaml(p)
    );
    std::fs::write(&file, body).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let undo = |restore: bool| {
        let _ = std::fs::remove_file(&file);
        if created_dir {
            let _ = std::fs::remove_dir(&dir);
        }
        if restore {
            let _ = std::fs::write(config_file, &original);
        }
    };
    if !lists_dir {
        let mut f = match std::fs::OpenOptions::new().append(true).open(config_file) {
            Ok(f) => f,
            Err(e) => {
                undo(false);
                return Err(format!("cannot append to {}: {e}", config_file.display()));
            }
        };
        if let Err(e) = std::io::Write::write_all(&mut f, include_block(&text).as_bytes()) {
            undo(true);
            return Err(format!("cannot append to {}: {e}", config_file.display()));
        }
    }
    if let Err(e) = super::load(&super::Source::File(config_file.to_path_buf())) {
        undo(!lists_dir);
        return Err(format!(
            "the saved profile did not load, so it was taken back: {e}"
        ));
    }
    Ok(Saved {
        file,
        included: !lists_dir,
    })
}
