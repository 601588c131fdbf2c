//! A model's shape as vLLM sizes it, read from its `config.json`: layers, attention heads, KV
//! heads, head size, context length, dtype, sliding-window and MLA layouts, quantisation.
use serde_json::Value;

/// How a layer keeps its KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    /// K and V per KV head for every token (MHA, GQA, MQA).
    Full,
    /// Only the last `window` tokens are kept.
    Sliding,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Shape {
    pub architecture: Option<String>,
    pub model_type: Option<String>,
    pub layers: u32,
    pub attention_heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub hidden_size: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub vocab_size: Option<u64>,
    /// The longest context the model declares (max_position_embeddings and kin).
    pub context_length: Option<u64>,
    /// `torch_dtype`/`dtype` as written (`bfloat16`).
    pub dtype: Option<String>,
    pub sliding_window: Option<u64>,
    /// Each layer's attention, in order; sliding layers only where a window is in force.
    pub layer_kinds: Vec<Attention>,
    /// DeepSeek-style multi-head latent attention: one latent of this many values per token
    /// and layer instead of K and V per head.
    pub mla_latent: Option<u32>,
    /// `quantization_config.quant_method` (`awq`, `gptq`, `fp8`, ...).
    pub quantization: Option<String>,
    pub experts: Option<u32>,
}

fn u(v: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| {
        let x = v.get(*k)?;
        x.as_u64()
            .or_else(|| x.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
}

fn s(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k)?.as_str().map(str::to_string))
}

/// Bytes of one value of a dtype named as `config.json` or vLLM's `--dtype` name it.
pub fn dtype_bytes(name: &str) -> Option<u64> {
    Some(match name.to_ascii_lowercase().as_str() {
        "float32" | "float" | "fp32" | "f32" => 4,
        "bfloat16" | "bf16" | "float16" | "half" | "fp16" | "f16" => 2,
        "fp8" | "fp8_e4m3" | "fp8_e5m2" | "float8_e4m3fn" | "float8_e5m2" | "int8" | "uint8" => 1,
        "float64" | "double" => 8,
        _ => return None,
    })
}

impl Shape {
    /// Reads the fields every architecture names differently; `None` when the file does not
    /// say how many layers and heads the model has (not a language model vLLM can size).
    pub fn from_config(root: &Value) -> Option<Shape> {
        // Multimodal configs keep the language model's numbers in `text_config`.
        let v = if u(root, &["num_hidden_layers", "n_layer", "num_layers"]).is_none() {
            root.get("text_config")
                .or_else(|| root.get("llm_config"))
                .unwrap_or(root)
        } else {
            root
        };
        let layers = u(v, &["num_hidden_layers", "n_layer", "num_layers"])? as u32;
        let heads = u(v, &["num_attention_heads", "n_head", "num_heads"])? as u32;
        if layers == 0 || heads == 0 {
            return None;
        }
        let kv_heads = if v.get("multi_query").and_then(Value::as_bool) == Some(true) {
            1
        } else {
            u(
                v,
                &[
                    "num_key_value_heads",
                    "num_kv_heads",
                    "multi_query_group_num",
                    "n_head_kv",
                ],
            )
            .map(|k| k as u32)
            .unwrap_or(heads)
        };
        let hidden = u(v, &["hidden_size", "n_embd", "d_model"]);
        let head_dim = u(v, &["head_dim", "kv_channels"])
            .map(|h| h as u32)
            .or_else(|| hidden.map(|h| (h / heads as u64) as u32))?;
        let mla_latent =
            u(v, &["kv_lora_rank"]).map(|r| (r + u(v, &["qk_rope_head_dim"]).unwrap_or(0)) as u32);
        let sliding_window = sliding_window(v);
        let layer_kinds = layer_kinds(v, layers, sliding_window.is_some());
        let quantization = root
            .get("quantization_config")
            .or_else(|| v.get("quantization_config"))
            .and_then(|q| s(q, &["quant_method"]));
        Some(Shape {
            architecture: root
                .get("architectures")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                .map(str::to_string),
            model_type: s(root, &["model_type"]),
            layers,
            attention_heads: heads,
            kv_heads: if mla_latent.is_some() {
                1
            } else {
                kv_heads.max(1)
            },
            head_dim,
            hidden_size: hidden,
            intermediate_size: u(v, &["intermediate_size", "ffn_hidden_size", "n_inner"]),
            vocab_size: u(v, &["vocab_size", "padded_vocab_size"]),
            context_length: context_length(v),
            dtype: s(v, &["torch_dtype", "dtype"]).or_else(|| s(root, &["torch_dtype", "dtype"])),
            sliding_window,
            layer_kinds,
            mla_latent,
            quantization,
            experts: u(v, &["num_experts", "n_routed_experts", "num_local_experts"])
                .map(|e| e as u32),
        })
    }

    pub fn full_layers(&self) -> u32 {
        self.layer_kinds
            .iter()
            .filter(|k| **k == Attention::Full)
            .count() as u32
    }

    pub fn sliding_layers(&self) -> u32 {
        self.layers - self.full_layers()
    }
}

/// The window in force: Qwen2-style configs carry a `sliding_window` that
/// `use_sliding_window: false` switches off.
fn sliding_window(v: &Value) -> Option<u64> {
    if v.get("use_sliding_window").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    u(v, &["sliding_window", "attention_window"]).filter(|w| *w > 0)
}

/// Each layer's attention: from `layer_types` where the config lists them, else from Gemma's
/// `sliding_window_pattern` (every Nth layer full), else every layer sliding when a window
/// is set (Mistral v0.1), else full.
fn layer_kinds(v: &Value, layers: u32, windowed: bool) -> Vec<Attention> {
    if let Some(types) = v.get("layer_types").and_then(Value::as_array) {
        if types.len() == layers as usize {
            return types
                .iter()
                .map(|t| match t.as_str() {
                    Some(t) if windowed && t.contains("sliding") => Attention::Sliding,
                    _ => Attention::Full,
                })
                .collect();
        }
    }
    if !windowed {
        return vec![Attention::Full; layers as usize];
    }
    match u(v, &["sliding_window_pattern"]).filter(|p| *p > 1) {
        Some(p) => (0..layers as u64)
            .map(|i| {
                if (i + 1) % p == 0 {
                    Attention::Full
                } else {
                    Attention::Sliding
                }
            })
            .collect(),
        None => vec![Attention::Sliding; layers as usize],
    }
}

/// The longest context as vLLM derives it: the smallest of the length keys, times a YaRN or
/// dynamic rope-scaling factor.
fn context_length(v: &Value) -> Option<u64> {
    let keys = [
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "max_sequence_length",
        "model_max_length",
    ];
    let base = keys.iter().filter_map(|k| u(v, &[k])).min()?;
    let scaling = v.get("rope_scaling").or_else(|| v.get("rope_parameters"));
    let factor = scaling
        .filter(|r| {
            matches!(
                s(r, &["rope_type", "type"]).as_deref(),
                Some("yarn" | "dynamic" | "linear")
            )
        })
        .and_then(|r| r.get("factor")?.as_f64())
        .filter(|f| *f > 1.0)
        .unwrap_or(1.0);
    Some((base as f64 * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_gqa_config_reads_its_heads_and_context() {
        let s = Shape::from_config(&json!({
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
            "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
            "max_position_embeddings": 32768, "sliding_window": 131072,
            "use_sliding_window": false, "torch_dtype": "bfloat16"
        }))
        .unwrap();
        assert_eq!((s.layers, s.kv_heads, s.head_dim), (28, 4, 128));
        assert_eq!(s.context_length, Some(32768));
        assert_eq!(s.sliding_window, None);
        assert_eq!(s.full_layers(), 28);
        assert_eq!(s.dtype.as_deref(), Some("bfloat16"));
    }

    #[test]
    fn gemma_pattern_and_layer_types_mark_sliding_layers() {
        let p = Shape::from_config(&json!({
            "num_hidden_layers": 12, "num_attention_heads": 8, "num_key_value_heads": 4,
            "head_dim": 256, "sliding_window": 1024, "sliding_window_pattern": 6
        }))
        .unwrap();
        assert_eq!((p.full_layers(), p.sliding_layers()), (2, 10));
        let t = Shape::from_config(&json!({
            "num_hidden_layers": 3, "num_attention_heads": 8, "hidden_size": 512,
            "sliding_window": 512,
            "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]
        }))
        .unwrap();
        assert_eq!(
            t.layer_kinds,
            vec![Attention::Sliding, Attention::Full, Attention::Sliding]
        );
        assert_eq!(
            t.kv_heads, 8,
            "no KV head count means one per attention head"
        );
    }

    #[test]
    fn nested_text_config_and_yarn_scaling() {
        let s = Shape::from_config(&json!({
            "architectures": ["LlavaForConditionalGeneration"],
            "text_config": {"num_hidden_layers": 4, "num_attention_heads": 4, "hidden_size": 256,
                "max_position_embeddings": 4096,
                "rope_scaling": {"type": "yarn", "factor": 4.0}}
        }))
        .unwrap();
        assert_eq!(s.layers, 4);
        assert_eq!(s.context_length, Some(16384));
        assert!(Shape::from_config(&json!({"model_type": "bert"})).is_none());
    }
}
