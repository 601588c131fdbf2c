//! ModelScope's cache: `MODELSCOPE_CACHE` (else `~/.cache/modelscope/hub`), a plain folder per
//! model at `models/ORG/NAME` (older releases: `ORG/NAME`), with each `.` of the name stored as
//! `___`. Downloads in progress live under `._____temp/`.
use super::{Found, Source};
use std::path::{Path, PathBuf};

pub fn root(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(c) = env("MODELSCOPE_CACHE").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(c));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".cache")
            .join("modelscope")
            .join("hub")
    })
}

const TEMP: &str = "._____temp";

pub fn scan(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for base in [root.join("models"), root.to_path_buf()] {
        let Ok(orgs) = std::fs::read_dir(&base) else {
            continue;
        };
        for org in orgs.flatten() {
            let org_name = org.file_name().to_string_lossy().into_owned();
            if org_name.starts_with('.') || (base == root && org_name == "models") {
                continue;
            }
            let Ok(names) = std::fs::read_dir(org.path()) else {
                continue;
            };
            for n in names.flatten() {
                let dir = n.path();
                if !dir.join("config.json").is_file() {
                    continue;
                }
                let name = n.file_name().to_string_lossy().replace("___", ".");
                let id = format!("{org_name}/{name}");
                let pending = root.join(TEMP).join(&org_name).join(n.file_name());
                let incomplete = pending.exists();
                let mut problems = Vec::new();
                if incomplete {
                    problems.push(format!(
                        "a download of it is unfinished ({})",
                        pending.display()
                    ));
                }
                out.push(Found {
                    id,
                    source: Source::ModelScope,
                    size_bytes: super::dirs::dir_size(&dir),
                    path: dir,
                    revision: None,
                    incomplete,
                    problems,
                });
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.path == b.path);
    out
}
