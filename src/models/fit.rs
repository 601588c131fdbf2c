//! Will it fit? vLLM's own accounting (V1 worker), estimated before a start:
//!
//! ```text
//! budget per GPU  = total memory x gpu_memory_utilization
//! KV space        = budget - weights / (TP x PP) - activations - non-torch - CUDA graphs
//! KV per token    = sum over the GPU's layers of 2 x max(1, kv_heads / TP) x head_dim x bytes
//!                   (MLA: one latent of kv_lora_rank + rope dims, no x2)
//! blocks          = KV space / (KV per token x block size); one block is vLLM's null block
//! ```
//!
//! Weights come from the safetensors headers; activations, non-torch memory and CUDA graphs
//! are allowances (vLLM measures them in its profile run), so this is an estimate and vLLM's
//! start-up decides. On vLLM's CPU build the KV space is given outright
//! (`VLLM_CPU_KVCACHE_SPACE` GiB) and the estimate is exact.
use super::shape::{dtype_bytes, Attention, Shape};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Where the KV cache lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Memory {
    /// One entry per GPU the server would use: (total bytes, bytes already used by others).
    Gpus(Vec<(u64, u64)>),
    /// vLLM's CPU build: the KV cache is this many bytes, whatever else the host holds.
    CpuKv(u64),
    /// Nothing is known of the memory: only vLLM's refusals of the settings are checked.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub tensor_parallel: u32,
    pub pipeline_parallel: u32,
    /// `None`: the model's own context length.
    pub max_model_len: Option<u64>,
    pub gpu_memory_utilization: f64,
    /// `--dtype`; `None` or `auto`: the model's.
    pub dtype: Option<String>,
    /// `--kv-cache-dtype`; `None` or `auto`: the model dtype.
    pub kv_cache_dtype: Option<String>,
    pub max_num_seqs: u32,
    pub enforce_eager: bool,
    /// vLLM refuses a length above the model's unless `VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`.
    pub allow_long: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tensor_parallel: 1,
            pipeline_parallel: 1,
            max_model_len: None,
            gpu_memory_utilization: 0.9,
            dtype: None,
            kv_cache_dtype: None,
            max_num_seqs: 256,
            enforce_eager: false,
            allow_long: false,
        }
    }
}

/// What the weights weigh, as the headers say.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsInfo {
    pub bytes: u64,
    pub parameters: u64,
    /// The headers' main dtype (`F32`, `BF16`, `I32` for packed quantised weights).
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Fits {
        sequences: f64,
    },
    /// One sequence of `max_model_len` does not fit; `longest` does.
    TooLong {
        longest: u64,
    },
    /// Weights and allowances leave nothing for the KV cache.
    NoRoom,
    /// vLLM's free-memory check at start-up would refuse: others hold too much of a GPU.
    NotEnoughFree {
        gpu: usize,
        free: u64,
        wanted: u64,
    },
    /// vLLM refuses the settings before sizing anything.
    Refused {
        why: String,
    },
    /// The settings pass vLLM's checks; the memory was not known, so nothing was sized.
    Unsized,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fit {
    pub max_model_len: u64,
    pub tensor_parallel: u32,
    pub gpu_memory_utilization: f64,
    pub block_size: u32,
    /// Per GPU, bytes.
    pub budget: u64,
    pub weights: u64,
    /// Activation peak, non-torch memory and CUDA graphs together (allowances).
    pub overhead: u64,
    pub kv_space: i64,
    pub kv_bytes_per_token: u64,
    pub kv_blocks: u64,
    pub kv_tokens: u64,
    /// KV bytes one sequence of `max_model_len` needs (per GPU).
    pub per_sequence: u64,
    /// The longest single sequence the KV space holds (vLLM's "estimated maximum model length").
    pub longest: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Nearest settings that would fit, as flags.
    pub suggestions: Vec<String>,
    pub notes: Vec<String>,
}

impl Fit {
    /// Not known to fail (an unsized estimate is not a failure).
    pub fn fits(&self) -> bool {
        matches!(self.verdict, Verdict::Fits { .. } | Verdict::Unsized)
    }

    /// The verdict in one line.
    pub fn line(&self) -> String {
        let len = crate::format::thousands(self.max_model_len);
        let head = match &self.verdict {
            Verdict::Fits { sequences } => format!(
                "fits: room for {} sequences of {len} tokens ({} KV tokens)",
                if *sequences >= 10.0 { format!("{sequences:.0}") } else { format!("{sequences:.2}") },
                crate::format::thousands(self.kv_tokens)
            ),
            Verdict::TooLong { longest } => format!(
                "does not fit: one sequence of {len} tokens needs {} of KV cache, {} is left; the longest that fits is {}",
                gib(self.per_sequence),
                gib(self.kv_space.max(0) as u64),
                crate::format::thousands(*longest)
            ),
            Verdict::NoRoom => format!(
                "does not fit: weights {} + allowances {} leave no KV cache in {} per GPU",
                gib(self.weights),
                gib(self.overhead),
                gib(self.budget)
            ),
            Verdict::NotEnoughFree { gpu, free, wanted } => format!(
                "will not start: GPU {gpu} has {} free, less than the {} that gpu_memory_utilization {} asks for",
                gib(*free),
                gib(*wanted),
                self.gpu_memory_utilization
            ),
            Verdict::Refused { why } => format!("will not start: {why}"),
            Verdict::Unsized => "the settings pass vLLM's checks; memory not estimated (no GPU reading)".into(),
        };
        if self.suggestions.is_empty() {
            head
        } else {
            format!("{head}; try {}", self.suggestions.join(", or "))
        }
    }
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / GIB)
}

/// KV bytes one token takes on one GPU, counting each layer's kind; `(full, sliding)`.
pub fn kv_bytes_per_token(shape: &Shape, tp: u32, pp: u32, kv_dtype_bytes: u64) -> (u64, u64) {
    let per_layer = match shape.mla_latent {
        Some(latent) => latent as u64 * kv_dtype_bytes,
        None => {
            let heads = (shape.kv_heads / tp.max(1)).max(1) as u64;
            2 * heads * shape.head_dim as u64 * kv_dtype_bytes
        }
    };
    let pp = pp.max(1) as u64;
    let full = shape
        .layer_kinds
        .iter()
        .filter(|k| **k == Attention::Full)
        .count() as u64;
    let sliding = shape.layers as u64 - full;
    (
        full.div_ceil(pp) * per_layer,
        sliding.div_ceil(pp) * per_layer,
    )
}

fn ceil_to(n: u64, block: u64) -> u64 {
    n.div_ceil(block) * block
}

/// The dtype the server computes in: `--dtype`, else the model's, with float32 models
/// downcast to the platform's preferred 16-bit type (vLLM's `auto`, GPU and CPU builds alike).
fn serving_dtype_bytes(shape: &Shape, s: &Settings) -> u64 {
    let named = s.dtype.as_deref().filter(|d| *d != "auto");
    let model = shape.dtype.as_deref().and_then(dtype_bytes).unwrap_or(2);
    match named.and_then(dtype_bytes) {
        Some(b) => b,
        None if model == 4 => 2,
        None => model,
    }
}

struct Inputs<'a> {
    shape: &'a Shape,
    weights: &'a WeightsInfo,
    memory: &'a Memory,
}

/// The estimate for one set of settings.
pub fn estimate(shape: &Shape, weights: &WeightsInfo, memory: &Memory, s: &Settings) -> Fit {
    let i = Inputs {
        shape,
        weights,
        memory,
    };
    let mut fit = compute(&i, s);
    if !fit.fits() {
        fit.suggestions = suggest(&i, s, &fit);
    }
    fit
}

fn compute(i: &Inputs, s: &Settings) -> Fit {
    let shape = i.shape;
    let cpu = matches!(i.memory, Memory::CpuKv(_));
    let tp = s.tensor_parallel.max(1);
    let pp = s.pipeline_parallel.max(1);
    let block: u64 = if cpu { 128 } else { 16 };
    let model_len = shape.context_length.unwrap_or(4096);
    let max_len = s.max_model_len.unwrap_or(model_len).max(1);
    let act_bytes = serving_dtype_bytes(shape, s);
    let kv_bytes = s
        .kv_cache_dtype
        .as_deref()
        .filter(|d| *d != "auto")
        .and_then(dtype_bytes)
        .unwrap_or(act_bytes);
    let (full_tok, slide_tok) = kv_bytes_per_token(shape, tp, pp, kv_bytes);
    let per_token = full_tok + slide_tok;
    let mut notes = Vec::new();
    // Weights cast from float32 to the serving dtype shrink with it; packed quantised
    // weights (I32, U8) stay as they are.
    let mut weights = i.weights.bytes;
    if i.weights.dtype.as_deref() == Some("F32") && act_bytes < 4 {
        weights = weights / 4 * act_bytes;
    }
    let weights = weights / (tp as u64 * pp as u64);
    let window = shape.sliding_window.unwrap_or(u64::MAX);
    let (budget, overhead, kv_space, free_check) = match i.memory {
        Memory::Unknown => (0, 0, 0, None),
        Memory::CpuKv(b) => (*b, 0, *b as i64, None),
        Memory::Gpus(gpus) => on_gpus(shape, s, gpus, weights, act_bytes),
    };
    let kv_blocks = if per_token == 0 || kv_space <= 0 {
        0
    } else {
        kv_space as u64 / (per_token * block)
    };
    let per_sequence = full_tok * ceil_to(max_len, block)
        + slide_tok * ceil_to(max_len.min(window.saturating_add(block)), block);
    let usable = kv_blocks.saturating_sub(1) * block * per_token;
    // vLLM's "KV cache size: N tokens" is its maximum concurrency times max_model_len.
    let blocks_per_seq = per_sequence.div_ceil((per_token * block).max(1)).max(1);
    let concurrency = kv_blocks as f64 / blocks_per_seq as f64;
    let longest = longest_len(full_tok, slide_tok, window, block, usable);
    let verdict = if let Some(why) = refusal(shape, s, max_len, model_len, i.memory) {
        Verdict::Refused { why }
    } else if let Some(v) = free_check {
        v
    } else if *i.memory == Memory::Unknown {
        Verdict::Unsized
    } else if kv_blocks <= 1 {
        Verdict::NoRoom
    } else if per_sequence > usable {
        Verdict::TooLong { longest }
    } else {
        Verdict::Fits {
            sequences: concurrency,
        }
    };
    if matches!(i.memory, Memory::Gpus(_)) {
        notes.push(format!(
            "an estimate: activations, non-torch memory and CUDA graphs are allowed {} per GPU; vLLM's profile run at start-up decides",
            gib(overhead)
        ));
    }
    Fit {
        max_model_len: max_len,
        tensor_parallel: tp,
        gpu_memory_utilization: s.gpu_memory_utilization,
        block_size: block as u32,
        budget,
        weights,
        overhead,
        kv_space,
        kv_bytes_per_token: per_token,
        kv_blocks,
        kv_tokens: (concurrency * max_len as f64) as u64,
        per_sequence,
        longest,
        verdict,
        suggestions: Vec::new(),
        notes,
    }
}

/// The GPUs' budget for this server, the allowance for activations, non-torch memory and
/// CUDA graphs, the KV cache's share of what is left, and whether any GPU lacks the free
/// memory its share asks for.
fn on_gpus(
    shape: &Shape,
    s: &Settings,
    gpus: &[(u64, u64)],
    weights: u64,
    act_bytes: u64,
) -> (u64, u64, i64, Option<Verdict>) {
    let (tp, pp) = (s.tensor_parallel.max(1), s.pipeline_parallel.max(1));
    let total = gpus.iter().map(|g| g.0).min().unwrap_or(0);
    let budget = (total as f64 * s.gpu_memory_utilization) as u64;
    let batched: u64 = if total as f64 >= 70.0 * GIB {
        8192
    } else {
        2048
    };
    let hidden = shape
        .hidden_size
        .unwrap_or(shape.attention_heads as u64 * shape.head_dim as u64);
    let inter = shape.intermediate_size.unwrap_or(4 * hidden) / tp as u64;
    let activations = batched * (4 * hidden + 2 * inter) * act_bytes
        + s.max_num_seqs as u64 * shape.vocab_size.unwrap_or(32_000) * 4;
    let non_torch = (0.3 * GIB) as u64 + if tp * pp > 1 { (0.25 * GIB) as u64 } else { 0 };
    let graphs = if s.enforce_eager {
        0
    } else {
        (0.5 * GIB) as u64
    };
    let overhead = activations + non_torch + graphs;
    let free_check = gpus.iter().enumerate().find_map(|(n, (t, used))| {
        let wanted = (*t as f64 * s.gpu_memory_utilization) as u64;
        let free = t.saturating_sub(*used);
        (free < wanted).then_some(Verdict::NotEnoughFree {
            gpu: n,
            free,
            wanted,
        })
    });
    (
        budget,
        overhead,
        budget as i64 - weights as i64 - overhead as i64,
        free_check,
    )
}

/// The largest length whose KV need fits in `usable` bytes (vLLM's binary search).
fn longest_len(full_tok: u64, slide_tok: u64, window: u64, block: u64, usable: u64) -> u64 {
    let need = |len: u64| {
        full_tok * ceil_to(len, block)
            + slide_tok * ceil_to(len.min(window.saturating_add(block)), block)
    };
    if full_tok == 0 {
        return if need(window) <= usable { u64::MAX } else { 0 };
    }
    let (mut lo, mut hi) = (0u64, usable / full_tok + block);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if need(mid) <= usable {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// vLLM's own refusals, before it sizes anything.
fn refusal(
    shape: &Shape,
    s: &Settings,
    max_len: u64,
    model_len: u64,
    memory: &Memory,
) -> Option<String> {
    let tp = s.tensor_parallel.max(1);
    if !shape.attention_heads.is_multiple_of(tp) {
        return Some(format!(
            "total number of attention heads ({}) must be divisible by tensor parallel size ({tp})",
            shape.attention_heads
        ));
    }
    if let Memory::Gpus(g) = memory {
        let need = (tp * s.pipeline_parallel.max(1)) as usize;
        if g.len() < need {
            return Some(format!(
                "tensor x pipeline parallel size needs {need} GPUs, {} given",
                g.len()
            ));
        }
    }
    if max_len > model_len && !s.allow_long && shape.context_length.is_some() {
        return Some(format!(
            "max_model_len {max_len} is above the model's limit of {model_len} (VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 overrides)"
        ));
    }
    None
}

/// The nearest settings that would fit: a shorter context, a higher utilisation, a larger TP.
fn suggest(i: &Inputs, s: &Settings, fit: &Fit) -> Vec<String> {
    let mut out = Vec::new();
    if let Verdict::Refused { why } = &fit.verdict {
        if why.contains("divisible") {
            // The nearest sizes that divide the heads, below and above.
            let heads = i.shape.attention_heads;
            let divides = |t: &u32| heads.is_multiple_of(*t);
            let below = (1..s.tensor_parallel).rev().find(divides);
            let above = (s.tensor_parallel + 1..=heads.min(1024)).find(divides);
            for tp in below.into_iter().chain(above) {
                out.push(format!("--tensor-parallel-size {tp}"));
            }
        } else if why.contains("above the model's limit") {
            out.push(format!(
                "--max-model-len {}",
                i.shape.context_length.unwrap_or(4096)
            ));
        }
        return out;
    }
    if let Verdict::NotEnoughFree { free, .. } = &fit.verdict {
        if let Memory::Gpus(g) = i.memory {
            let total = g.iter().map(|x| x.0).min().unwrap_or(1).max(1);
            let u = ((*free as f64 / total as f64) * 100.0).floor() / 100.0 - 0.01;
            if u > 0.05 {
                out.push(format!("--gpu-memory-utilization {u:.2}"));
            }
        }
        return out;
    }
    if fit.longest >= 1 && fit.longest < fit.max_model_len {
        out.push(format!("--max-model-len {}", fit.longest));
    }
    if let Memory::Gpus(_) = i.memory {
        for u in [0.92, 0.95] {
            if u > s.gpu_memory_utilization {
                let t = Settings {
                    gpu_memory_utilization: u,
                    ..s.clone()
                };
                if compute(i, &t).fits() {
                    out.push(format!("--gpu-memory-utilization {u}"));
                    break;
                }
            }
        }
        let mut tp = s.tensor_parallel.max(1) * 2;
        while tp <= 16 {
            if i.shape.attention_heads.is_multiple_of(tp) {
                let gpus = match i.memory {
                    Memory::Gpus(g) => g.len(),
                    _ => 0,
                };
                let t = Settings {
                    tensor_parallel: tp,
                    ..s.clone()
                };
                // Judged as if the GPUs were there: the user may have them on another node.
                let mem = Memory::Gpus(vec![
                    match i.memory {
                        Memory::Gpus(g) => g[0],
                        _ => (0, 0),
                    };
                    gpus.max(tp as usize)
                ]);
                let j = Inputs { memory: &mem, ..*i };
                if compute(&j, &t).fits() {
                    let more = if (tp as usize) > gpus {
                        format!(" (needs {tp} GPUs)")
                    } else {
                        String::new()
                    };
                    out.push(format!("--tensor-parallel-size {tp}{more}"));
                    break;
                }
            }
            tp *= 2;
        }
    }
    out
}
