//! The Hugging Face hub cache by its published layout (`huggingface/hub-docs`, "local cache"):
//! `models--ORG--NAME/{refs/main, snapshots/COMMIT/..., blobs/HASH}`. The model is the snapshot
//! that `refs/main` names (what `from_pretrained` and vLLM load offline), its size is each blob
//! of that snapshot once, and `blobs/*.incomplete` marks a download that did not finish.
use super::{Found, Source};
use std::path::{Path, PathBuf};

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn root(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(c) = env("HF_HUB_CACHE").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(c));
    }
    if let Some(h) = env("HF_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(h).join("hub"));
    }
    let base = env("XDG_CACHE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("huggingface").join("hub"))
}

/// `models--Qwen--Qwen2.5-7B` -> `Qwen/Qwen2.5-7B`.
pub fn repo_id(folder: &str) -> Option<String> {
    let rest = folder.strip_prefix("models--")?;
    (!rest.is_empty()).then(|| rest.split("--").collect::<Vec<_>>().join("/"))
}

pub fn scan(root: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Found> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = repo_id(&name)?;
            Some(one(&e.path(), id))
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// One repository folder, if it is there.
pub fn scan_one(repo: &Path, id: &str) -> Option<Found> {
    repo.is_dir().then(|| one(repo, id.to_string()))
}

fn one(repo: &Path, id: String) -> Found {
    let mut problems = Vec::new();
    let refs_main = std::fs::read_to_string(repo.join("refs").join("main"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let snapshots: Vec<String> = std::fs::read_dir(repo.join("snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let revision = match &refs_main {
        Some(c) if snapshots.contains(c) => Some(c.clone()),
        Some(c) => {
            problems.push(format!("refs/main names {c}, which has no snapshot"));
            None
        }
        None if snapshots.len() == 1 => {
            problems.push(
                "no refs/main: vLLM cannot load it by id offline (pass the snapshot path)".into(),
            );
            snapshots.first().cloned()
        }
        None => {
            problems.push(format!(
                "no refs/main and {} snapshots: which one is the model is not known",
                snapshots.len()
            ));
            None
        }
    };
    let incomplete = std::fs::read_dir(repo.join("blobs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
                .count()
        })
        .unwrap_or(0);
    if incomplete > 0 {
        problems.push(format!(
            "{incomplete} partial download(s) (blobs/*.incomplete): finish it with `hf download {id}`"
        ));
    }
    let path = revision
        .as_ref()
        .map(|r| repo.join("snapshots").join(r))
        .unwrap_or_else(|| repo.to_path_buf());
    let size = revision
        .as_ref()
        .map(|_| snapshot_size(&path, &mut problems))
        .unwrap_or(0);
    Found {
        id,
        source: Source::HfCache,
        path,
        revision,
        size_bytes: size,
        incomplete: incomplete > 0,
        problems,
    }
}

/// Bytes of the snapshot's files, each blob once (two names may point at one blob).
fn snapshot_size(dir: &Path, problems: &mut Vec<String>) -> u64 {
    super::dirs::tree_size(dir, &mut |p| {
        problems.push(format!(
            "{} points at a missing blob",
            p.strip_prefix(dir).unwrap_or(p).display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_follows_the_documented_order() {
        let env = |m: &'static [(&'static str, &'static str)]| {
            move |k: &str| m.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            root(&env(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")])),
            Some("/c".into())
        );
        assert_eq!(
            root(&env(&[("HF_HOME", "/h"), ("HOME", "/u")])),
            Some("/h/hub".into())
        );
        assert_eq!(
            root(&env(&[("HOME", "/u")])),
            Some("/u/.cache/huggingface/hub".into())
        );
        assert_eq!(repo_id("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(repo_id("datasets--a--b"), None);
    }
}
