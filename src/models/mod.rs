//! The models on this machine and whether one fits (DESIGN.md, "models"): the Hugging Face
//! and ModelScope caches, folders named in the config and Ollama's store, each model's shape
//! from its `config.json` and its weights from the safetensors or GGUF headers, and the
//! memory estimate that says before a start whether vLLM will find room for it.
pub mod dirs;
pub mod fit;
pub mod gguf;
pub mod hf_cache;
pub mod modelscope;
pub mod ollama;
pub mod plan;
pub mod shape;
pub mod weights;

pub use plan::model_path;
use shape::Shape;
use std::path::{Path, PathBuf};
use weights::Weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    HfCache,
    ModelScope,
    Folder,
    Ollama,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::HfCache => "hf",
            Source::ModelScope => "modelscope",
            Source::Folder => "folder",
            Source::Ollama => "ollama",
        }
    }
}

/// A model as a source lists it, before its files are read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Found {
    /// What to ask for: a hub id (`Qwen/Qwen2.5-7B`), a path, or an Ollama name (`llama3:8b`).
    pub id: String,
    pub source: Source,
    /// The folder vLLM loads (a snapshot, a model folder) or Ollama's weights blob.
    pub path: PathBuf,
    /// The hub commit `refs/main` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub size_bytes: u64,
    /// A download of it did not finish.
    pub incomplete: bool,
    pub problems: Vec<String>,
}

impl Found {
    /// A model folder given by path, named as it was given.
    pub fn folder(id: &str, path: PathBuf) -> Found {
        Found {
            id: id.to_string(),
            source: Source::Folder,
            size_bytes: dirs::dir_size(&path),
            path,
            revision: None,
            incomplete: false,
            problems: Vec::new(),
        }
    }
}

/// A model with what its files say.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Model {
    #[serde(flatten)]
    pub found: Found,
    pub shape: Option<Shape>,
    pub weights: Option<Weights>,
    /// The parameter count (from the safetensors or GGUF tensors).
    pub parameters: Option<u64>,
    /// The weights' dtype (`BF16`, `F32`) or the GGUF quantisation (`Q4_K_M`).
    pub dtype: Option<String>,
    pub quantization: Option<String>,
    /// Profiles and running servers that use it (filled by the caller that knows them).
    pub used_by: Vec<String>,
}

impl Model {
    pub fn id(&self) -> &str {
        &self.found.id
    }

    /// What serves it: vLLM for hub and folder models, an Ollama route for Ollama's.
    pub fn served_by(&self) -> &'static str {
        if self.found.source == Source::Ollama {
            "ollama"
        } else {
            "vllm"
        }
    }

    /// Whether `model` (a profile's `model:` or a server's) names this model.
    pub fn is_named_by(&self, model: &str, base: &Path) -> bool {
        if model == self.found.id {
            return true;
        }
        let p = Path::new(model);
        let p = if p.is_relative() {
            base.join(p)
        } else {
            p.to_path_buf()
        };
        match (
            std::fs::canonicalize(&p),
            std::fs::canonicalize(&self.found.path),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// Reads a found model's `config.json` and weight headers; what cannot be read becomes a
/// problem on the model, never an error of the whole list.
pub fn inspect(found: Found) -> Model {
    let mut m = Model {
        found,
        shape: None,
        weights: None,
        parameters: None,
        dtype: None,
        quantization: None,
        used_by: Vec::new(),
    };
    if m.found.source == Source::Ollama {
        inspect_gguf(&mut m);
        return m;
    }
    let dir = m.found.path.clone();
    match std::fs::read(dir.join("config.json")) {
        Ok(b) => match serde_json::from_slice::<serde_json::Value>(&b) {
            Ok(v) => {
                m.shape = Shape::from_config(&v);
                if m.shape.is_none() {
                    m.found
                        .problems
                        .push("config.json does not give the layer and head counts".into());
                }
            }
            Err(e) => m.found.problems.push(format!("config.json: {e}")),
        },
        Err(_) if m.found.revision.is_some() || m.found.source != Source::HfCache => {
            m.found.problems.push("no config.json".into())
        }
        Err(_) => {}
    }
    match weights::of_dir(&dir) {
        Ok(Some(w)) => {
            m.parameters = Some(w.parameters);
            m.dtype = w.main_dtype().map(str::to_string);
            m.weights = Some(w);
        }
        Ok(None) => {}
        Err(e) => m.found.problems.push(e),
    }
    m.quantization = m.shape.as_ref().and_then(|s| s.quantization.clone());
    if m.dtype.is_none() {
        m.dtype = m.shape.as_ref().and_then(|s| s.dtype.clone());
    }
    m
}

fn inspect_gguf(m: &mut Model) {
    if !gguf::is_gguf(&m.found.path) {
        return;
    }
    match gguf::read(&m.found.path) {
        Ok(g) => {
            m.parameters = Some(g.parameters);
            m.quantization = g.quantization().map(str::to_string);
            m.dtype = m.quantization.clone();
            let layers = g.arch_int("block_count").unwrap_or(0) as u32;
            let heads = g.arch_int("attention.head_count").unwrap_or(0) as u32;
            if layers > 0 && heads > 0 {
                let hidden = g.arch_int("embedding_length");
                m.shape = Some(Shape {
                    architecture: g.architecture().map(str::to_string),
                    model_type: g.architecture().map(str::to_string),
                    layers,
                    attention_heads: heads,
                    kv_heads: g
                        .arch_int("attention.head_count_kv")
                        .unwrap_or(heads as u64) as u32,
                    head_dim: g
                        .arch_int("attention.key_length")
                        .or_else(|| hidden.map(|h| h / heads as u64))
                        .unwrap_or(0) as u32,
                    hidden_size: hidden,
                    intermediate_size: g.arch_int("feed_forward_length"),
                    vocab_size: None,
                    context_length: g.arch_int("context_length"),
                    dtype: None,
                    sliding_window: None,
                    layer_kinds: vec![shape::Attention::Full; layers as usize],
                    mla_latent: None,
                    quantization: m.quantization.clone(),
                    experts: g.arch_int("expert_count").map(|e| e as u32),
                });
            }
        }
        Err(e) => m.found.problems.push(e),
    }
}

/// Marks each model with the profiles that name it (and whether that server runs).
pub fn mark_users(models: &mut [Model], cfg: &crate::config::Config, running: &[String]) {
    for m in models.iter_mut() {
        m.used_by = cfg
            .servers
            .iter()
            .filter(|(_, p)| {
                p.model
                    .as_deref()
                    .is_some_and(|x| m.is_named_by(x, &cfg.base_dir))
            })
            .map(|(n, _)| {
                if running.contains(n) {
                    format!("{n} (running)")
                } else {
                    n.clone()
                }
            })
            .collect();
    }
}

/// Where to look, from the environment and the config.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pub hf: Option<PathBuf>,
    pub modelscope: Option<PathBuf>,
    pub ollama: Vec<PathBuf>,
    pub folders: Vec<PathBuf>,
}

impl Places {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, folders: Vec<PathBuf>) -> Self {
        Places {
            hf: hf_cache::root(env),
            modelscope: modelscope::root(env),
            ollama: ollama::roots(env),
            folders,
        }
    }

    pub fn current(folders: Vec<PathBuf>) -> Self {
        Self::from_env(&|k| std::env::var(k).ok(), folders)
    }
}

/// Every model in every place, hub caches first, each read from its headers.
pub fn discover(places: &Places) -> Vec<Model> {
    let mut found = Vec::new();
    if let Some(r) = &places.hf {
        found.extend(hf_cache::scan(r));
    }
    if let Some(r) = &places.modelscope {
        found.extend(modelscope::scan(r));
    }
    for f in &places.folders {
        found.extend(dirs::scan(f));
    }
    let mut seen_ollama = std::collections::HashSet::new();
    for r in &places.ollama {
        if let Ok(c) = std::fs::canonicalize(r) {
            if seen_ollama.insert(c) {
                found.extend(ollama::scan(r));
            }
        }
    }
    found.into_iter().map(inspect).collect()
}

/// Finds a model by id, Ollama name or path among those listed, else reads a folder given by
/// path directly.
pub fn resolve(models: &[Model], what: &str, base: &Path) -> Option<Model> {
    if let Some(m) = models.iter().find(|m| m.is_named_by(what, base)) {
        return Some(m.clone());
    }
    let p = Path::new(what);
    let p = if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    };
    p.join("config.json")
        .is_file()
        .then(|| inspect(Found::folder(what, p)))
}
