//! The fit estimate against hand-computed figures on published configs: Qwen2.5-7B (GQA, TP
//! 1/2/8), DeepSeek-V2-Lite (MLA), Gemma-3 (sliding windows), and the tiny model's figures as
//! the real vLLM's CPU build logs them.
use anorag::models::fit::{estimate, kv_bytes_per_token, Memory, Settings, Verdict, WeightsInfo};
use anorag::models::shape::Shape;
use serde_json::json;

fn shape(v: serde_json::Value) -> Shape {
    Shape::from_config(&v).unwrap()
}

fn qwen25_7b() -> Shape {
    // Qwen/Qwen2.5-7B-Instruct config.json (published).
    shape(
        json!({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "max_position_embeddings": 32768, "sliding_window": 131072,
        "use_sliding_window": false, "torch_dtype": "bfloat16", "vocab_size": 152064}),
    )
}

#[test]
fn gqa_kv_bytes_per_token_by_hand() {
    // 2 (K,V) x 28 layers x 4 KV heads x 128 x 2 bytes = 57,344 B; TP 2 halves the heads.
    let s = qwen25_7b();
    assert_eq!(kv_bytes_per_token(&s, 1, 1, 2), (57_344, 0));
    assert_eq!(kv_bytes_per_token(&s, 2, 1, 2), (28_672, 0));
    // TP 8 > 4 KV heads: each rank keeps one (replicated), not half of one.
    assert_eq!(kv_bytes_per_token(&s, 8, 1, 2), (14_336, 0));
}

#[test]
fn mla_kv_bytes_per_token_by_hand() {
    // deepseek-ai/DeepSeek-V2-Lite: 27 layers, kv_lora_rank 512, qk_rope_head_dim 64, bf16:
    // one latent of 576 values per layer, no x2: 27 x 576 x 2 = 31,104 B, whatever the TP.
    let s = shape(
        json!({"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 2048,
        "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
        "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
        "v_head_dim": 128, "max_position_embeddings": 163840, "torch_dtype": "bfloat16"}),
    );
    assert_eq!(kv_bytes_per_token(&s, 1, 1, 2), (31_104, 0));
    assert_eq!(kv_bytes_per_token(&s, 2, 1, 2), (31_104, 0));
}

#[test]
fn sliding_window_layers_need_only_their_window() {
    // google/gemma-3-4b-it's text model: 34 layers, every 6th full, window 1024, 4 KV heads
    // of 256, bf16: 2 x 4 x 256 x 2 = 4,096 B per layer per token; 5 full + 29 sliding.
    let s = shape(json!({"num_hidden_layers": 34, "num_attention_heads": 8,
        "num_key_value_heads": 4, "head_dim": 256, "hidden_size": 2560,
        "sliding_window": 1024, "sliding_window_pattern": 6,
        "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}));
    assert_eq!(kv_bytes_per_token(&s, 1, 1, 2), (5 * 4096, 29 * 4096));
    let w = WeightsInfo {
        bytes: 0,
        parameters: 0,
        dtype: Some("BF16".into()),
    };
    let f = estimate(
        &s,
        &w,
        &Memory::CpuKv(64 << 30),
        &Settings {
            max_model_len: Some(32768),
            ..Settings::default()
        },
    );
    // One sequence: full layers 32,768 tokens, sliding layers window + a block (1,152).
    assert_eq!(f.per_sequence, 5 * 4096 * 32768 + 29 * 4096 * 1152);
}

#[test]
fn the_cpu_build_matches_vllms_own_figures_for_the_tiny_model() {
    // The real vLLM 0.32 (CPU build) runs the float32 tiny model in bfloat16: 2 x 2 layers
    // x 2 KV heads x 64 x 2 bytes = 1,024 B a token, blocks of 128, 1 GiB: 8,192 blocks.
    // It logs "CPU KV cache size: 1,048,508 tokens, Maximum concurrency for 1,000,000
    // tokens per request: 1.05x" and refuses 2,000,000 tokens.
    let s = shape(json!({"num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "hidden_size": 256,
        "max_position_embeddings": 4096, "dtype": "float32"}));
    let w = WeightsInfo {
        bytes: 5_754_560,
        parameters: 1_437_952,
        dtype: Some("F32".into()),
    };
    let mem = Memory::CpuKv(1 << 30);
    let ok = estimate(&s, &w, &mem, &Settings::default());
    assert_eq!(ok.kv_tokens, 1_048_576);
    assert!(ok.fits(), "{}", ok.line());
    let million = Settings {
        max_model_len: Some(1_000_000),
        allow_long: true,
        ..Settings::default()
    };
    assert_eq!(estimate(&s, &w, &mem, &million).kv_tokens, 1_048_508);
    let long = Settings {
        max_model_len: Some(2_000_000),
        allow_long: true,
        ..Settings::default()
    };
    let f = estimate(&s, &w, &mem, &long);
    assert_eq!(f.verdict, Verdict::TooLong { longest: 1_048_448 });
    assert!(f.line().contains("1.91 GiB"), "{}", f.line());
    assert!(f
        .suggestions
        .contains(&"--max-model-len 1048448".to_string()));
    let refused = estimate(
        &s,
        &w,
        &mem,
        &Settings {
            max_model_len: Some(100_000),
            ..Settings::default()
        },
    );
    assert!(
        matches!(refused.verdict, Verdict::Refused { .. }),
        "{}",
        refused.line()
    );
}

#[test]
fn a_7b_on_one_24_gib_gpu_at_full_context_and_the_way_out() {
    let s = qwen25_7b();
    // 7.62 B parameters in bf16: 15.23 GB of weights.
    let w = WeightsInfo {
        bytes: 15_231_233_024,
        parameters: 7_615_616_512,
        dtype: Some("BF16".into()),
    };
    let one = Memory::Gpus(vec![(24 << 30, 0)]);
    let f = estimate(&s, &w, &one, &Settings::default());
    // 24 GiB x 0.9 = 21.6 GiB; minus 14.19 GiB of weights and the allowances leaves a few
    // GiB: at 57,344 B a token, enough for a handful of 32k sequences.
    assert!(f.fits(), "{}", f.line());
    assert_eq!(f.kv_bytes_per_token, 57_344);
    let small = Memory::Gpus(vec![(16 << 30, 0), (16 << 30, 0)]);
    let g = estimate(&s, &w, &small, &Settings::default());
    assert!(!g.fits(), "{}", g.line());
    assert!(
        g.suggestions
            .iter()
            .any(|x| x == "--tensor-parallel-size 2"),
        "{:?}",
        g.suggestions
    );
    let busy = Memory::Gpus(vec![(24 << 30, 20 << 30)]);
    let b = estimate(&s, &w, &busy, &Settings::default());
    assert!(
        matches!(b.verdict, Verdict::NotEnoughFree { gpu: 0, .. }),
        "{}",
        b.line()
    );
    let odd = estimate(
        &s,
        &w,
        &Memory::Gpus(vec![(80 << 30, 0); 3]),
        &Settings {
            tensor_parallel: 3,
            ..Settings::default()
        },
    );
    assert!(odd.line().contains("divisible"), "{}", odd.line());
}
