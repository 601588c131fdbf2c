//! Exact prompt lengths without a server: prompts made with the tiny model's `tokenizer.json`
//! (tests/fixtures/tokenizer) are, re-encoded, exactly the asked number of tokens, per request
//! with a range ratio too, and the same for the same seed.
use anorag::bench::exact;
use anorag::bench::tokenize::{Method, Tokenizer};
use std::path::PathBuf;

fn tok() -> Tokenizer {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tiny-qwen2.json");
    Tokenizer::from_file(&p).unwrap()
}

#[tokio::test]
async fn every_prompt_is_exactly_the_asked_length() {
    let t = tok();
    let e = exact::build(&t, 40, 100, 16, 0.0, 7).await.unwrap();
    assert_eq!(e.prompts.len(), 40);
    assert_eq!(e.info.method, Method::TokenizerFile);
    assert_eq!(e.info.inexact_prompts, 0);
    assert_eq!(
        e.info.template_overhead, None,
        "a local file has no server template"
    );
    for p in &e.prompts {
        assert_eq!(t.encode(&p.text).await.unwrap().len(), 100, "{:?}", p.text);
        assert_eq!(p.input_len_estimate, 100);
        assert_eq!(p.output_len, 16);
    }
    // Random, not one prompt repeated.
    assert_ne!(e.prompts[0].text, e.prompts[1].text);
    // The word estimate this replaces was far off on this tokenizer: 100 words are more.
    let words = anorag::bench::Workload::random(100, 16)
        .prompts(1, 7)
        .unwrap();
    let n = t.encode(&words[0].text).await.unwrap().len();
    assert!(n > 100, "100 common words are {n} tokens here");
}

#[tokio::test]
async fn with_a_range_each_request_is_exact_and_the_seed_repeats_them() {
    let t = tok();
    let e = exact::build(&t, 30, 64, 32, 0.5, 11).await.unwrap();
    let lens: Vec<u32> = e.prompts.iter().map(|p| p.input_len_estimate).collect();
    assert!(lens.iter().all(|l| (32..=96).contains(l)), "{lens:?}");
    assert!(lens.iter().any(|l| *l != lens[0]), "lengths vary: {lens:?}");
    for p in &e.prompts {
        assert_eq!(
            t.encode(&p.text).await.unwrap().len() as u32,
            p.input_len_estimate
        );
    }
    let again = exact::build(&t, 30, 64, 32, 0.5, 11).await.unwrap();
    assert_eq!(
        e.prompts.iter().map(|p| &p.text).collect::<Vec<_>>(),
        again.prompts.iter().map(|p| &p.text).collect::<Vec<_>>()
    );
}

#[test]
fn a_missing_tokenizer_file_is_an_error_naming_the_flag_and_the_path() {
    let e = Tokenizer::from_file(std::path::Path::new("/nonexistent/tok.json")).unwrap_err();
    assert!(e.starts_with("--tokenizer /nonexistent/tok.json"), "{e}");
}

#[tokio::test]
async fn exact_prefixes_are_shared_token_for_token() {
    let t = tok();
    let e = exact::build_prefix(&t, 9, 40, 12, 3, 8, 5).await.unwrap();
    assert_eq!(e.prompts.len(), 9);
    let mut by_group: Vec<Vec<Vec<u32>>> = vec![Vec::new(); 3];
    for (i, p) in e.prompts.iter().enumerate() {
        let ids = t.encode(&p.text).await.unwrap();
        assert_eq!(ids.len() as u32, p.input_len_estimate);
        by_group[i % 3].push(ids);
    }
    for g in &by_group {
        // The prefix's tokens are the same in every prompt of its group (the seam may merge
        // its last token with the suffix's first).
        let head = &g[0][..39];
        assert!(g.iter().all(|ids| &ids[..39] == head));
    }
    assert_ne!(by_group[0][0][..39], by_group[1][0][..39]);
    assert!(e.info.inexact_prompts <= 9);
    let exact = e
        .prompts
        .iter()
        .filter(|p| p.input_len_estimate == 52)
        .count();
    assert!(
        exact >= 6,
        "most prompts are exactly 40 + 12 tokens: {exact} of 9"
    );
}

/// The simulator's vLLM flavour answers `/tokenize` and `/detokenize` as vLLM does, with its
/// word tokenizer or a given `tokenizer.json`; prompts built on it are exact, and its `usage`
/// counts the same tokens (the chat template's included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_lengths_work_against_the_simulators_tokenize() {
    use anorag::sim::{self, tokenize::SimTokenizer, Flavor, SimConfig};
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tiny-qwen2.json");
    for tokenizer in [SimTokenizer::Words, SimTokenizer::from_file(&file).unwrap()] {
        let mut cfg = SimConfig::new(Flavor::Vllm).timing(0, 0, 4);
        cfg.tokenizer = tokenizer;
        let s = sim::start(cfg).await.unwrap();
        let t = Tokenizer::server(&s.base_url(), "qwen2_5_0_5b")
            .await
            .unwrap();
        let e = exact::build(&t, 5, 50, 4, 0.0, 3).await.unwrap();
        assert_eq!(e.info.method, Method::ServerTokenize);
        assert_eq!(e.info.inexact_prompts, 0);
        let overhead = e
            .info
            .template_overhead
            .expect("the server's chat template");
        // One request: usage's prompt tokens are the prompt's plus the template's.
        let http = reqwest::Client::new();
        let chat = serde_json::json!({"model": "qwen2_5_0_5b", "max_tokens": 2,
            "messages": [{"role": "user", "content": e.prompts[0].text}]});
        let url = format!("{}/chat/completions", s.base_url());
        let answer = http.post(url).json(&chat).send().await.unwrap();
        let resp: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            resp["usage"]["prompt_tokens"],
            50 + overhead as u64,
            "{resp}"
        );
        let bad = reqwest::Client::new()
            .post(s.base_url().replace("/v1", "/tokenize"))
            .json(&serde_json::json!({"model": "qwen2_5_0_5b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
    }
}
