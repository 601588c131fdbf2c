//! What the load test sends: random prompts of a given length, a JSONL prompt file, or a
//! ShareGPT file. Without the model's tokenizer, lengths are targets: random prompts use
//! common words (about one token each) and file prompts are estimated at four characters a
//! token. The figures use the server's own token counts (`usage`).
use super::words::WORDS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One request of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    /// Tokens to ask for (`max_tokens`, with `ignore_eos` where the server supports it).
    pub output_len: u32,
    /// The client's estimate; the server's count replaces it when reported.
    pub input_len_estimate: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    Random {
        input_len: u32,
        output_len: u32,
        /// Lengths drawn uniformly within ±range_ratio of the given ones (vLLM's meaning).
        range_ratio: f64,
    },
    /// `groups` shared prefixes of `prefix_len` tokens, each request one of them plus
    /// `suffix_len` tokens of its own (vLLM's `prefix_repetition`): the prefix cache's case.
    Prefix {
        prefix_len: u32,
        suffix_len: u32,
        groups: u32,
        output_len: u32,
    },
    /// Conversations of `turns` turns: each turn sends the history (its questions and the
    /// server's answers) plus a new question of `input_len` tokens, `think_time_s` after the
    /// answer before.
    MultiTurn {
        turns: u32,
        input_len: u32,
        output_len: u32,
        think_time_s: f64,
    },
    Jsonl {
        path: PathBuf,
        output_len: Option<u32>,
    },
    ShareGpt {
        path: PathBuf,
        output_len: Option<u32>,
    },
}

/// Four characters per token: the usual rule of thumb for English text with BPE tokenizers.
pub fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count().div_ceil(4)).max(1) as u32
}

fn random_prompt(rng: &mut StdRng, len: u32) -> String {
    let mut s = String::with_capacity(len as usize * 6);
    for i in 0..len {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s
}

pub(super) fn ranged(rng: &mut StdRng, base: u32, ratio: f64) -> u32 {
    if ratio <= 0.0 {
        return base.max(1);
    }
    let lo = (f64::from(base) * (1.0 - ratio)).floor().max(1.0) as u32;
    let hi = (f64::from(base) * (1.0 + ratio)).ceil().max(f64::from(lo)) as u32;
    rng.random_range(lo..=hi)
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn file_err(path: &Path, message: impl Into<String>) -> WorkloadError {
    WorkloadError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl Workload {
    /// Random prompts of exactly these lengths (no range).
    pub fn random(input_len: u32, output_len: u32) -> Self {
        Workload::Random {
            input_len,
            output_len,
            range_ratio: 0.0,
        }
    }

    /// Where the run takes its prompts from. Random prompts are made one at a time from the
    /// request's index, so a run of any length holds none of them in memory beforehand; the
    /// same seed gives the same prompts (two routes are compared on equal terms).
    pub fn source(&self, seed: u64) -> Result<PromptSource, WorkloadError> {
        Ok(match self {
            Workload::Random {
                input_len,
                output_len,
                range_ratio,
            } => PromptSource::Random {
                input_len: *input_len,
                output_len: *output_len,
                range_ratio: *range_ratio,
                seed,
            },
            Workload::Prefix {
                prefix_len,
                suffix_len,
                groups,
                output_len,
            } => PromptSource::Prefix {
                prefix_len: *prefix_len,
                suffix_len: *suffix_len,
                groups: (*groups).max(1),
                output_len: *output_len,
                seed,
            },
            // The questions: question k of conversation c is prompt c * turns + k.
            Workload::MultiTurn {
                input_len,
                output_len,
                ..
            } => PromptSource::Random {
                input_len: *input_len,
                output_len: *output_len,
                range_ratio: 0.0,
                seed,
            },
            Workload::Jsonl { path, output_len } => {
                PromptSource::shuffled(read_jsonl(path, *output_len)?, seed)
            }
            Workload::ShareGpt { path, output_len } => {
                PromptSource::shuffled(read_sharegpt(path, *output_len)?, seed)
            }
        })
    }

    /// The first `n` prompts of [`Workload::source`].
    pub fn prompts(&self, n: usize, seed: u64) -> Result<Vec<Prompt>, WorkloadError> {
        let source = self.source(seed)?;
        Ok((0..n).map(|i| source.get(i)).collect())
    }
}

/// The prompts of a run, by request index.
#[derive(Debug, Clone)]
pub enum PromptSource {
    Random {
        input_len: u32,
        output_len: u32,
        range_ratio: f64,
        seed: u64,
    },
    Prefix {
        prefix_len: u32,
        suffix_len: u32,
        groups: u32,
        output_len: u32,
        seed: u64,
    },
    /// A file's prompts, shuffled once, repeated when the run is longer than the file.
    Pool(Vec<Prompt>),
}

/// The random stream of request `i`: its own, so request i is the same whatever came before
/// it and whoever makes it (word prompts here, exact prompts in `exact`).
pub(super) fn request_rng(seed: u64, i: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64)
}

/// The random stream of prefix group `g` (shared by every request of the group).
pub(super) fn prefix_rng(seed: u64, g: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x7072_6566_6978 ^ ((g as u64) << 32))
}

/// The group of request `i` in a prefix workload: round robin, so every group is used as
/// often as the others.
pub fn prefix_group(i: usize, groups: u32) -> usize {
    i % groups.max(1) as usize
}

impl PromptSource {
    fn shuffled(mut all: Vec<Prompt>, seed: u64) -> Self {
        use rand::seq::SliceRandom;
        all.shuffle(&mut StdRng::seed_from_u64(seed));
        PromptSource::Pool(all)
    }

    pub fn get(&self, i: usize) -> Prompt {
        match self {
            PromptSource::Random {
                input_len,
                output_len,
                range_ratio,
                seed,
            } => {
                // Each index its own stream: request i is the same whatever came before it.
                let mut rng = request_rng(*seed, i);
                let inp = ranged(&mut rng, *input_len, *range_ratio);
                let out = ranged(&mut rng, *output_len, *range_ratio);
                Prompt {
                    text: random_prompt(&mut rng, inp),
                    output_len: out,
                    input_len_estimate: inp,
                }
            }
            PromptSource::Prefix {
                prefix_len,
                suffix_len,
                groups,
                output_len,
                seed,
            } => {
                let g = prefix_group(i, *groups);
                let mut shared = prefix_rng(*seed, g);
                let mut own = request_rng(*seed, i);
                let text = format!(
                    "{} {}",
                    random_prompt(&mut shared, *prefix_len),
                    random_prompt(&mut own, *suffix_len)
                );
                Prompt {
                    text,
                    output_len: *output_len,
                    input_len_estimate: prefix_len + suffix_len,
                }
            }
            // Readers reject empty files, so the pool has at least one prompt.
            PromptSource::Pool(all) => all[i % all.len()].clone(),
        }
    }
}

/// One prompt per line: `{"prompt": "...", "output_len": 128}`, or `{"messages": [...]}`
/// (the last user message is the prompt), or a bare JSON string.
fn read_jsonl(path: &Path, output_len: Option<u32>) -> Result<Vec<Prompt>, WorkloadError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| file_err(path, format!("line {}: {e}", i + 1)))?;
        let prompt = match &v {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => v["prompt"].as_str().map(String::from).or_else(|| {
                v["messages"].as_array().and_then(|m| {
                    m.iter()
                        .rev()
                        .find(|x| x["role"] == "user")
                        .and_then(|x| x["content"].as_str().map(String::from))
                })
            }),
        }
        .ok_or_else(|| {
            file_err(
                path,
                format!("line {}: no `prompt` (or `messages`) in {line}", i + 1),
            )
        })?;
        let out_len = output_len
            .or_else(|| v["output_len"].as_u64().map(|n| n as u32))
            .or_else(|| v["max_tokens"].as_u64().map(|n| n as u32))
            .unwrap_or(128);
        out.push(Prompt {
            input_len_estimate: estimate_tokens(&prompt),
            text: prompt,
            output_len: out_len.max(1),
        });
    }
    if out.is_empty() {
        return Err(file_err(path, "has no prompts"));
    }
    Ok(out)
}

/// ShareGPT: `[{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}]`.
/// The first human turn is the prompt and the answer's length the output length; pairs that
/// vLLM's reader drops (prompt or answer under 4 tokens, prompt over 1024, both over 2048) are
/// dropped here too, by estimated length.
fn read_sharegpt(path: &Path, output_len: Option<u32>) -> Result<Vec<Prompt>, WorkloadError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| file_err(path, format!("not JSON: {e}")))?;
    let convs = v
        .as_array()
        .ok_or_else(|| file_err(path, "expected a JSON array of conversations"))?;
    let mut out = Vec::new();
    for c in convs {
        let turns = c["conversations"]
            .as_array()
            .or_else(|| c["conversation"].as_array());
        let Some(turns) = turns else { continue };
        fn text_of(t: &serde_json::Value) -> Option<&str> {
            t["value"].as_str().or_else(|| t["content"].as_str())
        }
        let is = |t: &serde_json::Value, who: &[&str]| {
            let w = t["from"]
                .as_str()
                .or_else(|| t["role"].as_str())
                .unwrap_or("");
            who.contains(&w)
        };
        let Some(h) = turns.iter().position(|t| is(t, &["human", "user"])) else {
            continue;
        };
        let Some(prompt) = text_of(&turns[h]) else {
            continue;
        };
        let answer = turns[h + 1..]
            .iter()
            .find(|t| is(t, &["gpt", "assistant", "chatgpt", "bard"]))
            .and_then(text_of);
        let p_len = estimate_tokens(prompt);
        let a_len = answer.map(estimate_tokens);
        let out_len = match (output_len, a_len) {
            (Some(n), _) => n,
            (None, Some(a)) => a,
            (None, None) => continue,
        };
        if p_len < 4 || out_len < 4 || p_len > 1024 || p_len + out_len > 2048 {
            continue;
        }
        out.push(Prompt {
            text: prompt.to_string(),
            output_len: out_len,
            input_len_estimate: p_len,
        });
    }
    if out.is_empty() {
        return Err(file_err(
            path,
            "has no usable conversation (a human turn followed by an answer, 4..1024 tokens)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_prompts_have_the_asked_lengths_and_repeat_for_a_seed() {
        let w = Workload::Random {
            input_len: 100,
            output_len: 16,
            range_ratio: 0.0,
        };
        let a = w.prompts(5, 7).unwrap();
        assert_eq!(a, w.prompts(5, 7).unwrap());
        assert_ne!(a, w.prompts(5, 8).unwrap());
        for p in &a {
            assert_eq!(p.text.split(' ').count(), 100);
            assert_eq!(p.output_len, 16);
        }
        assert_ne!(
            a[0].text, a[1].text,
            "no shared prefix for the prefix cache to find"
        );
        let r = Workload::Random {
            input_len: 100,
            output_len: 100,
            range_ratio: 0.5,
        };
        for p in r.prompts(200, 1).unwrap() {
            assert!(
                (50..=150).contains(&p.output_len) && (50..=150).contains(&p.input_len_estimate)
            );
        }
    }
}
