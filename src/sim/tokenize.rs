//! The simulator's tokenizer, and vLLM's `POST /tokenize` and `POST /detokenize` on it: the
//! model's `tokenizer.json` when one is given (`sim --tokenizer`), else a word tokenizer whose
//! ids round-trip (a word of the simulator's text is its index, any other word a stable id
//! that decodes to `tokN` and encodes back to N). Prompt counts in `usage` come from the same
//! tokenizer, so exact prompt lengths work against the simulator as against vLLM.
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Clone, Default)]
pub enum SimTokenizer {
    #[default]
    Words,
    File(Arc<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for SimTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SimTokenizer::Words => "Words",
            SimTokenizer::File(_) => "File",
        })
    }
}

impl PartialEq for SimTokenizer {
    fn eq(&self, o: &Self) -> bool {
        matches!((self, o), (SimTokenizer::Words, SimTokenizer::Words))
            || matches!((self, o), (SimTokenizer::File(a), SimTokenizer::File(b)) if Arc::ptr_eq(a, b))
    }
}

/// Tokens a chat template adds: per message (start, role, newline, end) and for the reply's
/// opening (start, role, newline), as Qwen's ChatML does.
const PER_MESSAGE: u64 = 4;
const GENERATION_PROMPT: u64 = 3;
/// Ids of the words tokenizer past its vocabulary: stable per word, decoded as `tokN`.
const UNKNOWN_BASE: u32 = 100_000;

fn vocab() -> Vec<&'static str> {
    super::text::WORDS_TEXT.split(' ').collect()
}

fn word_id(w: &str, vocab: &[&str]) -> u32 {
    if let Some(i) = vocab.iter().position(|v| *v == w) {
        return i as u32;
    }
    if let Some(n) = w.strip_prefix("tok").and_then(|n| n.parse::<u32>().ok()) {
        return n;
    }
    // FNV-1a: the same word, the same id, in every run.
    let mut h: u32 = 0x811c9dc5;
    for b in w.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    UNKNOWN_BASE + h % 900_000
}

impl SimTokenizer {
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        tokenizers::Tokenizer::from_file(&file)
            .map(|t| SimTokenizer::File(Arc::new(t)))
            .map_err(|e| format!("--tokenizer {}: {e}", file.display()))
    }

    pub fn encode(&self, text: &str, special: bool) -> Vec<u32> {
        match self {
            SimTokenizer::Words => {
                let v = vocab();
                text.split_whitespace().map(|w| word_id(w, &v)).collect()
            }
            SimTokenizer::File(t) => t
                .encode(text, special)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default(),
        }
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            // Each word with its leading space, as BPE tokens decode (`Ġword`): texts decoded
            // apart and joined (a prefix and its suffix) stay words apart.
            SimTokenizer::Words => {
                let v = vocab();
                ids.iter()
                    .map(|i| match v.get(*i as usize) {
                        Some(w) => format!(" {w}"),
                        None => format!(" tok{i}"),
                    })
                    .collect()
            }
            SimTokenizer::File(t) => t.decode(ids, false).unwrap_or_default(),
        }
    }

    /// A conversation as the chat template lays it out, as tokens.
    pub fn encode_messages(&self, messages: &[Value], generation_prompt: bool) -> Vec<u32> {
        match self {
            SimTokenizer::Words => {
                let mut out = Vec::new();
                for m in messages {
                    let content = m.get("content").and_then(Value::as_str).unwrap_or("");
                    out.extend([UNKNOWN_BASE - 1, UNKNOWN_BASE - 2, UNKNOWN_BASE - 3]);
                    out.extend(self.encode(content, false));
                    out.push(UNKNOWN_BASE - 4);
                }
                if generation_prompt {
                    out.extend([UNKNOWN_BASE - 1, UNKNOWN_BASE - 5, UNKNOWN_BASE - 3]);
                }
                out
            }
            SimTokenizer::File(_) => {
                let mut text = String::new();
                for m in messages {
                    let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
                    let content = m.get("content").and_then(Value::as_str).unwrap_or("");
                    text.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
                }
                if generation_prompt {
                    text.push_str("<|im_start|>assistant\n");
                }
                self.encode(&text, false)
            }
        }
    }

    /// The prompt tokens `usage` reports for a chat request (the template's reply opening
    /// included, as vLLM counts it): with the words tokenizer, words plus 4 a message and 3.
    pub fn count_messages(&self, messages: &[Value]) -> u64 {
        match self {
            SimTokenizer::Words => {
                messages
                    .iter()
                    .map(|m| {
                        m.get("content")
                            .and_then(Value::as_str)
                            .map_or(0, |c| c.split_whitespace().count() as u64)
                            + PER_MESSAGE
                    })
                    .sum::<u64>()
                    + GENERATION_PROMPT
            }
            SimTokenizer::File(_) => self.encode_messages(messages, true).len() as u64,
        }
    }

    pub fn count_prompt(&self, prompt: &str) -> u64 {
        self.encode(prompt, true).len() as u64
    }
}

/// `POST /tokenize`: `{"prompt": ...}` or `{"messages": [...]}` -> count, tokens, max_model_len.
pub fn tokenize(t: &SimTokenizer, v: &Value, max_model_len: u32) -> Result<Value, String> {
    let special = v
        .get("add_special_tokens")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let tokens = if let Some(m) = v.get("messages").and_then(Value::as_array) {
        let gen = v
            .get("add_generation_prompt")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        t.encode_messages(m, gen)
    } else if let Some(p) = v.get("prompt").and_then(Value::as_str) {
        t.encode(p, special)
    } else {
        return Err("either `prompt` or `messages` is required".into());
    };
    Ok(
        json!({"count": tokens.len(), "max_model_len": max_model_len, "tokens": tokens, "token_strs": null}),
    )
}

/// `POST /detokenize`: `{"tokens": [...]}` -> `{"prompt": ...}`.
pub fn detokenize(t: &SimTokenizer, v: &Value) -> Result<Value, String> {
    let ids: Vec<u32> = v
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or("`tokens` is required")?
        .iter()
        .map(|x| {
            x.as_u64()
                .map(|n| n as u32)
                .ok_or("`tokens` must be integers")
        })
        .collect::<Result<_, _>>()?;
    Ok(json!({"prompt": t.decode(&ids)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_their_count_and_ids() {
        let t = SimTokenizer::Words;
        let ids = t.encode("the simulator said zebra quietly", false);
        assert_eq!(ids.len(), 5);
        let text = t.decode(&ids);
        assert_eq!(t.encode(&text, false), ids);
        let chat = [json!({"role": "user", "content": "one two three"})];
        assert_eq!(
            t.encode_messages(&chat, true).len() as u64,
            t.count_messages(&chat)
        );
        assert_eq!(t.count_messages(&chat), 3 + 4 + 3);
    }
}
