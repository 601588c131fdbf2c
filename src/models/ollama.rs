//! Ollama's local store: `manifests/REGISTRY/NAMESPACE/MODEL/TAG` (Docker v2 manifests) whose
//! `application/vnd.ollama.image.model` layer names a blob `blobs/sha256-HEX`, a GGUF file.
//! What is found here is what an Ollama route can serve, not a vLLM model.
use super::{Found, Source};
use std::path::{Path, PathBuf};

/// `OLLAMA_MODELS`, else `~/.ollama/models`, else the system service's store.
pub fn roots(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(m) = env("OLLAMA_MODELS").filter(|s| !s.is_empty()) {
        return vec![PathBuf::from(m)];
    }
    let mut v: Vec<PathBuf> = env("HOME")
        .map(|h| PathBuf::from(h).join(".ollama").join("models"))
        .into_iter()
        .collect();
    v.push("/usr/share/ollama/.ollama/models".into());
    v
}

#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(serde::Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

/// `registry.ollama.ai/library/llama3/8b` -> `llama3:8b`; other namespaces keep their path.
pub fn model_name(rel: &[String]) -> Option<String> {
    let (tag, rest) = rel.split_last()?;
    let (model, rest) = rest.split_last()?;
    let prefix = match rest {
        [reg, ns] if reg == "registry.ollama.ai" && ns == "library" => String::new(),
        [reg, ns] if reg == "registry.ollama.ai" => format!("{ns}/"),
        other => other.iter().map(|s| format!("{s}/")).collect(),
    };
    Some(format!("{prefix}{model}:{tag}"))
}

pub fn scan(root: &Path) -> Vec<Found> {
    let manifests = root.join("manifests");
    let mut files = Vec::new();
    walk(&manifests, &mut files, 0);
    let mut out: Vec<Found> = files
        .into_iter()
        .filter_map(|f| {
            let rel: Vec<String> = f
                .strip_prefix(&manifests)
                .ok()?
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            Some(one(root, &f, model_name(&rel)?))
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 5 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out, depth + 1);
        } else {
            out.push(p);
        }
    }
}

/// `sha256:HEX` -> `blobs/sha256-HEX` (older stores kept the colon).
pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let dashed = root.join("blobs").join(digest.replacen(':', "-", 1));
    if dashed.exists() {
        dashed
    } else {
        root.join("blobs").join(digest)
    }
}

fn one(root: &Path, manifest: &Path, id: String) -> Found {
    let mut problems = Vec::new();
    let parsed: Option<Manifest> = std::fs::read(manifest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(m) = parsed else {
        problems.push(format!("{}: not a readable manifest", manifest.display()));
        return Found {
            id,
            source: Source::Ollama,
            path: manifest.to_path_buf(),
            revision: None,
            size_bytes: 0,
            incomplete: false,
            problems,
        };
    };
    let size = m.layers.iter().map(|l| l.size).sum();
    let model = m
        .layers
        .iter()
        .find(|l| l.media_type == "application/vnd.ollama.image.model");
    let tensors = m
        .layers
        .iter()
        .filter(|l| {
            l.media_type
                .starts_with("application/vnd.ollama.image.tensor")
        })
        .count();
    let path = match model {
        Some(l) => {
            let p = blob_path(root, &l.digest);
            if !p.exists() {
                problems.push(format!("its weights blob {} is missing", l.digest));
            }
            p
        }
        None if tensors > 0 => manifest.to_path_buf(),
        None => {
            problems.push("the manifest has no model layer".into());
            manifest.to_path_buf()
        }
    };
    // Ollama downloads into `blobs/sha256-HEX-partial` and renames when done.
    let incomplete = m.layers.iter().any(|l| {
        root.join("blobs")
            .join(format!("{}-partial", l.digest.replacen(':', "-", 1)))
            .exists()
    });
    Found {
        id,
        source: Source::Ollama,
        path,
        revision: None,
        size_bytes: size,
        incomplete,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ollamas_short_form() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            model_name(&v(&["registry.ollama.ai", "library", "llama3", "8b"])).as_deref(),
            Some("llama3:8b")
        );
        assert_eq!(
            model_name(&v(&["registry.ollama.ai", "me", "m", "latest"])).as_deref(),
            Some("me/m:latest")
        );
        assert_eq!(
            model_name(&v(&["hf.co", "org", "repo", "Q4"])).as_deref(),
            Some("hf.co/org/repo:Q4")
        );
    }
}
