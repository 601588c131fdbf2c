//! The fit estimate for a launch profile: its model found on disk, its settings read from the
//! profile (and its extra arguments), and the memory it would get (this machine's GPUs by
//! NVML, or the KV space of vLLM's CPU build).
use super::fit::{self, Fit, Memory, Settings, WeightsInfo};
use super::{hf_cache, inspect, Found, Model};
use crate::config::{Scalar, ServerProfile};
use std::path::{Path, PathBuf};

/// A model given as a path (`/`, `./`, `../`, `~/`), resolved against the config's folder.
pub fn model_path(model: &str, base: &Path) -> Option<PathBuf> {
    if let Some(rest) = model.strip_prefix("~/") {
        return std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rest));
    }
    if model.starts_with('/') {
        return Some(PathBuf::from(model));
    }
    if model.starts_with("./") || model.starts_with("../") {
        return Some(base.join(model));
    }
    None
}

/// The model a profile names: a folder by path, else a hub id in the Hugging Face cache
/// (the snapshot `refs/main` names), without scanning anything else.
pub fn locate(model: &str, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Option<Model> {
    if let Some(p) = model_path(model, base) {
        return p
            .join("config.json")
            .is_file()
            .then(|| inspect(Found::folder(model, p)));
    }
    let root = hf_cache::root(env)?;
    let folder = format!("models--{}", model.replace('/', "--"));
    hf_cache::scan_one(&root.join(folder), model).map(inspect)
}

/// `2048`, `32k` (x1000), `32K` (x1024); `auto` and `-1` are the model's own length.
pub fn model_len(v: &Scalar) -> Option<u64> {
    match v {
        Scalar::Int(n) if *n > 0 => Some(*n as u64),
        Scalar::Str(s) => crate::input::tokens_text(s).ok(),
        _ => None,
    }
}

/// The value after `--flag` (or in `--flag=value`) in a profile's extra arguments.
fn extra(p: &ServerProfile, flag: &str) -> Option<String> {
    let args: Vec<String> = p.extra_args.iter().map(ToString::to_string).collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&format!("{flag}=")).map(str::to_string)
        }
    })
}

fn env_of(p: &ServerProfile, key: &str) -> Option<String> {
    p.env
        .get(key)
        .map(ToString::to_string)
        .or_else(|| std::env::var(key).ok())
}

pub fn settings_of(p: &ServerProfile) -> Settings {
    let d = Settings::default();
    Settings {
        tensor_parallel: p.tensor_parallel_size.unwrap_or(1),
        pipeline_parallel: p.pipeline_parallel_size.unwrap_or(1),
        max_model_len: p
            .max_model_len
            .as_ref()
            .and_then(model_len)
            .or_else(|| extra(p, "--max-model-len").and_then(|v| model_len(&Scalar::Str(v)))),
        gpu_memory_utilization: p.gpu_memory_utilization.unwrap_or(d.gpu_memory_utilization),
        dtype: p.dtype.clone(),
        kv_cache_dtype: extra(p, "--kv-cache-dtype"),
        max_num_seqs: extra(p, "--max-num-seqs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.max_num_seqs),
        enforce_eager: p.enforce_eager.unwrap_or(false),
        allow_long: env_of(p, "VLLM_ALLOW_LONG_MAX_MODEL_LEN")
            .is_some_and(|v| v == "1" || v == "true"),
    }
}

/// vLLM's CPU build keeps its KV cache in `VLLM_CPU_KVCACHE_SPACE` GiB: that value in bytes.
pub fn cpu_kv_space(value: &str) -> Option<u64> {
    let gib: f64 = value.trim().parse().ok().filter(|g: &f64| *g > 0.0)?;
    Some((gib * (1u64 << 30) as f64) as u64)
}

/// A profile's CPU KV space: its own `env:`, else this process's environment.
pub fn cpu_kv_bytes(p: &ServerProfile) -> Option<u64> {
    cpu_kv_space(&env_of(p, "VLLM_CPU_KVCACHE_SPACE")?)
}

/// The GPUs a profile would get from this machine's (total, used) list: its `gpus:`, else
/// the first TP x PP.
pub fn gpus_for(p: &ServerProfile, all: &[(u32, u64, u64)]) -> Vec<(u64, u64)> {
    let n = (p.tensor_parallel_size.unwrap_or(1) * p.pipeline_parallel_size.unwrap_or(1)) as usize;
    match &p.gpus {
        Some(ids) => all
            .iter()
            .filter(|g| ids.contains(&g.0))
            .map(|g| (g.1, g.2))
            .collect(),
        None => all.iter().take(n).map(|g| (g.1, g.2)).collect(),
    }
}

pub fn weights_of(m: &Model) -> Option<WeightsInfo> {
    if let Some(w) = &m.weights {
        return Some(WeightsInfo {
            bytes: w.bytes,
            parameters: w.parameters,
            dtype: w.main_dtype().map(str::to_string),
        });
    }
    // No safetensors (a GGUF blob, .bin weights): the files' size is the best guess.
    (m.found.size_bytes > 0).then(|| WeightsInfo {
        bytes: m.found.size_bytes,
        parameters: m.parameters.unwrap_or(0),
        dtype: None,
    })
}

/// The estimate for a model under settings and memory; `Err` says what is missing.
pub fn estimate(m: &Model, s: &Settings, mem: &Memory) -> Result<Fit, String> {
    let shape = m.shape.as_ref().ok_or_else(|| {
        format!(
            "{}: its config.json does not give the layer and head counts",
            m.id()
        )
    })?;
    let w = weights_of(m).ok_or_else(|| format!("{}: no weights found to size", m.id()))?;
    Ok(fit::estimate(shape, &w, mem, s))
}

/// A profile's estimate before a start; `None` when it cannot be made (no model on disk, a
/// non-vLLM profile, no GPU reading and no CPU KV space).
pub fn for_profile(
    p: &ServerProfile,
    base: &Path,
    gpus: &[(u32, u64, u64)],
) -> Option<Result<Fit, String>> {
    if p.kind != crate::config::ServerKind::Vllm {
        return None;
    }
    let model = p.model.as_deref()?;
    let mem = match cpu_kv_bytes(p) {
        Some(b) => Memory::CpuKv(b),
        None if gpus.is_empty() => Memory::Unknown,
        None => Memory::Gpus(gpus_for(p, gpus)),
    };
    let m = locate(model, base, &|k| {
        p.env
            .get(k)
            .map(ToString::to_string)
            .or_else(|| std::env::var(k).ok())
    })?;
    Some(estimate(&m, &settings_of(p), &mem))
}

/// This machine's GPUs as (index, total bytes, used bytes), or why there are none.
pub fn local_gpus() -> Result<Vec<(u32, u64, u64)>, String> {
    let s = crate::telemetry::gpu::nvml::NvmlSource::new().read();
    if !s.status.is_ok() {
        return Err(s.status.describe());
    }
    Ok(s.devices
        .iter()
        .filter_map(|d| {
            Some((
                d.index,
                d.memory_total_bytes?,
                d.memory_used_bytes.unwrap_or(0),
            ))
        })
        .collect())
}
