//! Unit tier: `dashboard.yaml` parsing, interpolation and validation.
use anorag::config::{self, ProviderName};
use anorag::provider::ProviderKind;
use std::collections::HashMap;
use std::path::PathBuf;

fn bad_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/bad")
}

/// (file, `LINE:COL: key` the message must start with, a fragment it must contain)
const BAD: &[(&str, &str, &str)] = &[
    (
        "01_unknown_key.yaml",
        "5:76: llm.vllm_openai.routes.tiny_qwen.temprature:",
        "unknown field `temprature`",
    ),
    (
        "02_wrong_type.yaml",
        "6:27: llm.vllm_openai.params.temperature:",
        "invalid type: string \"hot\"",
    ),
    (
        "03_bad_url.yaml",
        "6:19: llm.vllm_openai.routes.tiny_qwen.base_url:",
        "is not a valid URL",
    ),
    (
        "04_unknown_default.yaml",
        "6:20: llm.vllm_openai.default_route:",
        "unknown route `tiny` (vllm_openai routes: tiny_qwen)",
    ),
    (
        "05_unknown_fallback.yaml",
        "8:28: llm.vllm_openai.routes.tiny_qwen.fallback[1]:",
        "unknown route `nowhere`",
    ),
    (
        "06_missing_model.yaml",
        "5:18: llm.vllm_openai.routes.tiny_qwen:",
        "missing field `model`",
    ),
    (
        "07_unknown_provider.yaml",
        "2:13: llm.provider:",
        "unknown variant `vllm`",
    ),
    (
        "08_syntax.yaml",
        "6:1: ",
        "while parsing a flow mapping at 5:18",
    ),
    (
        "09_env_unset.yaml",
        "5:30: ",
        "environment variable `ANORAG_TEST_UNSET_URL` is not set",
    ),
    (
        "10_ollama_v1.yaml",
        "4:15: llm.ollama.base_url:",
        "Ollama's native API has no /v1",
    ),
    (
        "11_missing_v1.yaml",
        "5:29: llm.vllm_openai.routes.tiny_qwen.base_url:",
        "ends in /v1",
    ),
    (
        "12_temperature_range.yaml",
        "6:27: llm.vllm_openai.params.temperature:",
        "3.5 is outside 0..2",
    ),
    (
        "13_self_fallback.yaml",
        "5:76: llm.vllm_openai.routes.tiny_qwen.fallback[0]:",
        "cannot fall back to itself",
    ),
    (
        "14_key_in_file.yaml",
        "5:18: llm.openai.api_key_env:",
        "looks like a key itself",
    ),
    (
        "15_provider_block_missing.yaml",
        "2:13: llm.provider:",
        "has no `llm.ollama` block",
    ),
    ("16_empty.yaml", "1:1: ", "needs an `llm:` section"),
    ("17_top_unknown.yaml", "6:1: lmm:", "unknown field `lmm`"),
    ("18_tabs.yaml", "2:1: ", "indented with a tab"),
    (
        "19_routes_list.yaml",
        "5:7: llm.vllm_openai.routes:",
        "expected a map",
    ),
    (
        "20_negative_tokens.yaml",
        "6:26: llm.vllm_openai.params.max_tokens:",
        "integer `-5`",
    ),
    (
        "21_dup_key.yaml",
        "6:7: llm.vllm_openai.routes.tiny_qwen:",
        "duplicate key (first given at line 5)",
    ),
    (
        "22_multi_dup.yaml",
        "6:9: llm.multi_ollama.instances[1]:",
        "is listed twice",
    ),
    (
        "23_unterminated_var.yaml",
        "5:30: ",
        "`${TINY_URL` is not closed",
    ),
    (
        "24_api_key_in_extra_args.yaml",
        "8:34: servers.tiny.extra_args[2]:",
        "`--api-key` puts a secret on the command line; set `api_key_env: VAR` instead",
    ),
    (
        "25_stop_timeout_too_long.yaml",
        "8:19: servers.tiny.stop_timeout:",
        "must be a number of seconds from 0.001 to 2592000 (30 days), not 100000000000000000000",
    ),
    (
        "26_unknown_cluster.yaml",
        "10:14: servers.big.cluster:",
        "unknown cluster `farms` (clusters: farm)",
    ),
    (
        "27_api_key_on_cluster.yaml",
        "12:5: servers.big.api_key_env:",
        "set the key in the nodes' own environment",
    ),
    (
        "28_cluster_address.yaml",
        "5:30: clusters.farm.address:",
        "is not the http(s) URL of a Ray dashboard",
    ),
];

#[test]
fn every_malformed_file_gets_its_file_line_col_message() {
    assert!(BAD.len() >= 15);
    let on_disk = std::fs::read_dir(bad_dir()).unwrap().count();
    assert_eq!(on_disk, BAD.len(), "every fixture has an expectation");
    for (file, prefix, fragment) in BAD {
        let path = bad_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let result = std::panic::catch_unwind(|| config::load_str_with_env(&text, file, &|_| None));
        let errs = result
            .unwrap_or_else(|_| panic!("{file}: the loader panicked"))
            .expect_err(file);
        let first = errs.0[0].to_string();
        let want = format!("{file}:{prefix}");
        assert!(
            first.starts_with(&want),
            "{file}:\n  got:  {first}\n  want: {want}…"
        );
        assert!(
            first.contains(fragment),
            "{file}:\n  got: {first}\n  missing: {fragment}"
        );
    }
}

#[test]
fn a_key_pasted_into_the_file_is_never_echoed() {
    let text = std::fs::read_to_string(bad_dir().join("14_key_in_file.yaml")).unwrap();
    let err = config::load_str(&text, "x.yaml").unwrap_err().to_string();
    assert!(!err.contains("sk-proj-abcdef"), "{err}");
}

#[test]
fn the_original_block_parses_as_it_is_and_means_what_it_says() {
    let text = r#"llm:
  provider: vllm_openai
  vllm_openai:
    routes:
      tiny_qwen: {base_url: http://127.0.0.1:8001/v1, model: qwen2_5_0_5b}
      large_qwen: {base_url: http://127.0.0.1:8002/v1, model: qwen2_5_7b}
    default_route: tiny_qwen
    params: {temperature: 0.0, max_tokens: 2048, top_p: 1.0, timeout: 30}
"#;
    let cfg = config::load_str(text, "original.yaml").unwrap();
    assert_eq!(cfg.llm.provider, ProviderName::VllmOpenai);
    assert_eq!(cfg.default_route().as_deref(), Some("tiny_qwen"));
    let routes = cfg.routes();
    assert_eq!(routes.len(), 2);
    let tiny = &routes[0];
    assert_eq!(tiny.name, "tiny_qwen");
    assert_eq!(tiny.kind, ProviderKind::VllmOpenai);
    assert_eq!(tiny.urls, vec!["http://127.0.0.1:8001/v1".to_string()]);
    assert_eq!(tiny.model, "qwen2_5_0_5b");
    assert_eq!(routes[1].model, "qwen2_5_7b");
    for r in &routes {
        assert_eq!(r.params.temperature, Some(0.0));
        assert_eq!(r.params.max_tokens, Some(2048));
        assert_eq!(r.params.top_p, Some(1.0));
        assert_eq!(
            r.params.timeout,
            Some(30.0),
            "seconds for the whole request"
        );
    }
}

#[test]
fn the_shipped_config_is_valid_and_falls_back_to_the_builtin_route() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboard.yaml");
    let cfg = config::load(&config::Source::File(path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.default_route().as_deref(), Some("tiny_qwen"));
    let routes = cfg.routes();
    let tiny = routes.iter().find(|r| r.name == "tiny_qwen").unwrap();
    assert_eq!(tiny.urls[0], "http://127.0.0.1:8001/v1");
    assert_eq!(tiny.model, "qwen2_5_0_5b");
    assert_eq!(tiny.fallback.last().map(String::as_str), Some("builtin"));
    let large = routes.iter().find(|r| r.name == "large_qwen").unwrap();
    assert_eq!(large.urls[0], "http://127.0.0.1:8002/v1");
    assert!(routes.iter().any(|r| r.kind == ProviderKind::Builtin));
    // The built-in default is the same file (read from elsewhere).
    let mut builtin = config::load(&config::Source::BuiltIn).unwrap();
    assert_eq!(builtin.file, "<built-in default>");
    builtin.file = cfg.file.clone();
    assert_eq!(builtin, cfg);
}

#[test]
fn environment_variables_are_interpolated_with_defaults() {
    let env: HashMap<&str, &str> = [("PORT", "9001"), ("EMPTY", "")].into();
    let get = |k: &str| env.get(k).map(|v| v.to_string());
    let text = r#"llm:
  provider: vllm_openai
  vllm_openai:
    routes:
      a: {base_url: "http://127.0.0.1:${PORT}/v1", model: m}   # ${NOT_EXPANDED} in a comment
      b: {base_url: "${B_URL:-http://127.0.0.1:9002/v1}", model: "cost$$"}
      c: {base_url: "http://127.0.0.1:${EMPTY:-9003}/v1", model: m}
"#;
    let cfg = config::load_str_with_env(text, "env.yaml", &get).unwrap();
    let r = cfg.routes();
    assert_eq!(r[0].urls[0], "http://127.0.0.1:9001/v1");
    assert_eq!(r[1].urls[0], "http://127.0.0.1:9002/v1");
    assert_eq!(r[1].model, "cost$", "$$ is a literal $");
    assert_eq!(
        r[2].urls[0], "http://127.0.0.1:9003/v1",
        "empty counts as unset"
    );

    let required = "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      a: {base_url: \"${URL:?set URL to the vLLM address}\", model: m}\n";
    let e = config::load_str_with_env(required, "req.yaml", &get)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "req.yaml:5:22: environment variable `URL` is not set: set URL to the vLLM address"
    );
}

#[test]
fn an_error_after_a_substitution_points_at_the_original_column() {
    let get = |k: &str| (k == "LONG").then(|| "a-much-longer-value".to_string());
    let text = "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      a: {base_url: http://127.0.0.1:8001/v1, model: ${LONG}, temperature: 1}\n";
    let e = config::load_str_with_env(text, "col.yaml", &get)
        .unwrap_err()
        .to_string();
    // `temperature` stands at column 63 in the file, whatever ${LONG} expanded to.
    assert!(e.starts_with("col.yaml:5:63: "), "{e}");
}

#[test]
fn several_problems_are_all_reported() {
    let text = "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      a: {base_url: http://x:1, model: m, fallback: [zz]}\n    default_route: nope\n";
    let errs = config::load_str(text, "many.yaml").unwrap_err();
    assert_eq!(errs.0.len(), 3, "{errs}");
}

#[test]
fn config_is_found_on_the_documented_search_path() {
    let explicit = PathBuf::from("/some/where.yaml");
    assert_eq!(
        config::find(Some(&explicit)),
        config::Source::File(explicit.clone())
    );
}
