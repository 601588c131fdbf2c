//! `anorag-tui models [--json]` and `models fit MODEL`: the models this machine has, and
//! whether one fits before it starts.
use crate::config::Config;
use crate::format;
use crate::models::fit::{Fit, Memory, Settings};
use crate::models::{self, plan, Model, Places};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub cmd: Option<ModelsCmd>,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum ModelsCmd {
    /// Whether MODEL fits: weights and KV cache per GPU, how many sequences of
    /// max_model_len, and the nearest settings that would fit. Exit 0 fits, 1 does not.
    Fit(FitArgs),
}

#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// A hub id in the local cache, a model folder, or a name from `anorag-tui models`.
    pub model: String,
    /// This machine's GPUs to use, by index (`0,1`); default the first TP x PP.
    #[arg(long, value_delimiter = ',')]
    pub gpus: Option<Vec<u32>>,
    /// Plan for GPUs of this size (per GPU: `80GiB`, `24576MiB`) instead of this machine's.
    #[arg(long, value_parser = crate::input::size_text)]
    pub gpu_memory: Option<u64>,
    /// Plan for vLLM's CPU build with this much KV cache (VLLM_CPU_KVCACHE_SPACE, GiB).
    #[arg(long, value_parser = crate::input::size_text)]
    pub cpu_kv_cache: Option<u64>,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub tensor_parallel_size: u32,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pipeline_parallel_size: u32,
    /// Default: the model's own context length.
    #[arg(long, value_parser = crate::input::tokens_text)]
    pub max_model_len: Option<u64>,
    #[arg(long, default_value_t = 0.9, value_parser = crate::input::fraction)]
    pub gpu_memory_utilization: f64,
    #[arg(long)]
    pub dtype: Option<String>,
    #[arg(long)]
    pub kv_cache_dtype: Option<String>,
    /// As vLLM's VLLM_ALLOW_LONG_MAX_MODEL_LEN=1: a max_model_len above the model's own.
    #[arg(long)]
    pub allow_long: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn places(cfg: &Config) -> Places {
    let folders: Vec<PathBuf> = cfg
        .models
        .paths
        .iter()
        .map(|p| cfg.base_dir.join(p))
        .collect();
    Places::current(folders)
}

pub async fn run(explicit: Option<&Path>, a: ModelsArgs) -> ExitCode {
    let cfg = or_exit!(super::config_or_exit(explicit));
    match a.cmd {
        Some(ModelsCmd::Fit(f)) => fit(&cfg, f),
        None => {
            let mut list = models::discover(&places(&cfg));
            let running: Vec<String> =
                crate::supervisor::Supervisor::from_env(std::sync::Arc::new(cfg.clone()))
                    .map(|s| {
                        s.statuses()
                            .into_iter()
                            .filter(|s| s.is_running())
                            .map(|s| s.name)
                            .collect()
                    })
                    .unwrap_or_default();
            models::mark_users(&mut list, &cfg, &running);
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else {
                print!("{}", table(&list));
            }
            ExitCode::SUCCESS
        }
    }
}

pub fn table(list: &[Model]) -> String {
    if list.is_empty() {
        return "no models found (looked in the Hugging Face and ModelScope caches, Ollama's store and models.paths)\n".into();
    }
    let mut out = format!(
        "{:<10} {:<44} {:<24} {:>8} {:<8} {:>8} {:>9}  {}\n",
        "SOURCE", "MODEL", "ARCHITECTURE", "PARAMS", "DTYPE", "CONTEXT", "SIZE", "USED BY"
    );
    for m in list {
        let s = m.shape.as_ref();
        out.push_str(&format!(
            "{:<10} {:<44} {:<24} {:>8} {:<8} {:>8} {:>9}  {}\n",
            m.found.source.label(),
            format::clip(m.id(), 44),
            format::clip(s.and_then(|s| s.architecture.as_deref()).unwrap_or("-"), 24),
            m.parameters
                .map(format::params)
                .unwrap_or_else(|| "-".into()),
            m.quantization
                .as_deref()
                .or(m.dtype.as_deref())
                .unwrap_or("-"),
            s.and_then(|s| s.context_length)
                .map(format::thousands)
                .unwrap_or_else(|| "-".into()),
            format::bytes(m.found.size_bytes),
            if m.used_by.is_empty() {
                "-".to_string()
            } else {
                m.used_by.join(", ")
            }
        ));
        if m.found.incomplete {
            out.push_str("           ! partial download\n");
        }
        for p in &m.found.problems {
            out.push_str(&format!("           ! {p}\n"));
        }
    }
    out
}

fn find_model(cfg: &Config, what: &str) -> Option<Model> {
    plan::locate(what, &cfg.base_dir, &|k| std::env::var(k).ok())
        .or_else(|| models::resolve(&models::discover(&places(cfg)), what, &cfg.base_dir))
}

fn memory_for(f: &FitArgs) -> Result<Memory, String> {
    if let Some(b) = f.cpu_kv_cache {
        return Ok(Memory::CpuKv(b));
    }
    let n = (f.tensor_parallel_size * f.pipeline_parallel_size) as usize;
    if let Some(m) = f.gpu_memory {
        return Ok(Memory::Gpus(vec![
            (m, 0);
            f.gpus
                .as_ref()
                .map_or(n, |g| g.len().max(n))
        ]));
    }
    match plan::local_gpus() {
        Ok(all) if !all.is_empty() => Ok(Memory::Gpus(match &f.gpus {
            Some(ids) => {
                for id in ids {
                    if !all.iter().any(|g| g.0 == *id) {
                        return Err(format!(
                            "--gpus: this machine has no GPU {id} ({} found)",
                            all.len()
                        ));
                    }
                }
                all.iter()
                    .filter(|g| ids.contains(&g.0))
                    .map(|g| (g.1, g.2))
                    .collect()
            }
            None => all.iter().take(n).map(|g| (g.1, g.2)).collect(),
        })),
        other => {
            if let Some(b) = std::env::var("VLLM_CPU_KVCACHE_SPACE")
                .ok()
                .and_then(|v| plan::cpu_kv_space(&v))
            {
                return Ok(Memory::CpuKv(b));
            }
            let why = other.err().unwrap_or_else(|| "no devices".into());
            Err(format!(
                "no GPU found here ({why}): give --gpu-memory SIZE to plan for GPUs of that size, or --cpu-kv-cache GIB for vLLM's CPU build"
            ))
        }
    }
}

fn fit(cfg: &Config, f: FitArgs) -> ExitCode {
    let Some(m) = find_model(cfg, &f.model) else {
        eprintln!(
            "error: model `{}` is not on this machine (not a folder with config.json, not in the Hugging Face cache; `anorag-tui models` lists what is)",
            f.model
        );
        return ExitCode::from(2);
    };
    let mem = match memory_for(&f) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let s = Settings {
        tensor_parallel: f.tensor_parallel_size,
        pipeline_parallel: f.pipeline_parallel_size,
        max_model_len: f.max_model_len,
        gpu_memory_utilization: f.gpu_memory_utilization,
        dtype: f.dtype.clone(),
        kv_cache_dtype: f.kv_cache_dtype.clone(),
        allow_long: f.allow_long,
        ..Settings::default()
    };
    let est = match plan::estimate(&m, &s, &mem) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if f.json {
        let v = serde_json::json!({"model": m.id(), "path": m.found.path, "memory": describe_memory(&mem), "fit": est, "line": est.line()});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", report(&m, &mem, &est));
    }
    if est.fits() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn describe_memory(mem: &Memory) -> String {
    match mem {
        Memory::CpuKv(b) => format!("vLLM CPU build, KV cache {}", format::bytes(*b)),
        Memory::Unknown => "not known".into(),
        Memory::Gpus(g) => {
            let used: u64 = g.iter().map(|x| x.1).sum();
            format!(
                "{} GPU(s) of {}{}",
                g.len(),
                format::bytes(g.iter().map(|x| x.0).min().unwrap_or(0)),
                if used > 0 {
                    format!(", {} in use by others", format::bytes(used))
                } else {
                    String::new()
                }
            )
        }
    }
}

/// The estimate as the operator reads it: each term, then the verdict.
pub fn report(m: &Model, mem: &Memory, f: &Fit) -> String {
    let mut out = String::new();
    let per = if matches!(mem, Memory::CpuKv(_)) {
        ""
    } else {
        " per GPU"
    };
    let mut row = |k: &str, v: String| out.push_str(&format!("{k:<10} {v}\n"));
    row(
        "model",
        format!(
            "{} ({}, {})",
            m.id(),
            m.found.source.label(),
            m.found.path.display()
        ),
    );
    if let Some(s) = &m.shape {
        let kv = match s.mla_latent {
            Some(l) => format!("MLA latent {l}"),
            None => format!("{} KV heads x {}", s.kv_heads, s.head_dim),
        };
        let sliding = if s.sliding_layers() > 0 {
            format!(
                ", {} sliding-window layers ({})",
                s.sliding_layers(),
                s.sliding_window.unwrap_or(0)
            )
        } else {
            String::new()
        };
        row(
            "shape",
            format!(
                "{} layers, {} heads, {kv}{sliding}, context {}",
                s.layers,
                s.attention_heads,
                s.context_length
                    .map(format::thousands)
                    .unwrap_or_else(|| "?".into())
            ),
        );
    }
    row(
        "weights",
        format!(
            "{} ({} parameters, {}): {} as served{per} at TP {}",
            format::bytes(m.weights.as_ref().map_or(m.found.size_bytes, |w| w.bytes)),
            m.parameters
                .map(format::params)
                .unwrap_or_else(|| "?".into()),
            m.dtype.as_deref().unwrap_or("?"),
            format::bytes(f.weights),
            f.tensor_parallel
        ),
    );
    row("memory", describe_memory(mem));
    if let Memory::Gpus(_) = mem {
        row(
            "budget",
            format!(
                "{} per GPU at gpu_memory_utilization {}; allowances {} (activations, non-torch, CUDA graphs)",
                format::bytes(f.budget),
                f.gpu_memory_utilization,
                format::bytes(f.overhead)
            ),
        );
    }
    row(
        "KV cache",
        format!(
            "{}{per}, {} B a token: {} blocks of {}, {} tokens at max_model_len {}",
            format::bytes(f.kv_space.max(0) as u64),
            format::thousands(f.kv_bytes_per_token),
            format::thousands(f.kv_blocks),
            f.block_size,
            format::thousands(f.kv_tokens),
            format::thousands(f.max_model_len)
        ),
    );
    row("verdict", f.line());
    for n in &f.notes {
        row("note", n.clone());
    }
    out
}
