//! What the simulator says: a fixed text cut into word tokens, and a rough token count.

/// The answer every request gets (its words are also the word tokenizer's vocabulary).
pub const WORDS_TEXT: &str = TEXT;
const TEXT: &str = "This answer comes from the anorag-tui built-in simulator. It streams one token at a fixed interval after a fixed time to first token, so the console, the router and the load tests can be shown and checked on a machine with no GPU and no vLLM. Point a route at a real vLLM server to see a real model answer.";

/// Token `i` of the answer, with its leading space.
pub fn token(i: u32) -> String {
    let words: Vec<&str> = TEXT.split(' ').collect();
    let w = words[i as usize % words.len()];
    if i == 0 {
        w.to_string()
    } else {
        format!(" {w}")
    }
}

/// A prompt's tokens in `usage` as the Ollama flavour counts them: words and 3.
pub fn prompt_tokens_of(prompt: &str) -> u64 {
    prompt.split_whitespace().count() as u64 + 3
}

/// A deterministic embedding of `text`: 16 dimensions from hashed words, unit length, so
/// equal texts embed equally and a test can tell inputs apart.
pub fn embedding(text: &str) -> Vec<f32> {
    use std::hash::{Hash, Hasher};
    let mut v = vec![0f32; 16];
    for w in text.split_whitespace() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        w.hash(&mut h);
        let x = h.finish();
        v[(x % 16) as usize] += 1.0 + ((x >> 8) % 7) as f32 / 7.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The inputs of an embeddings request: one string or a list of them.
pub fn embed_inputs(v: &serde_json::Value) -> Option<Vec<String>> {
    match v {
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        _ => None,
    }
}
