//! Random prompts of exact token lengths, made the way `vllm bench serve` makes its random
//! dataset: random token ids, decoded to text, encoded again, and cut or extended until the text
//! is exactly the asked number of tokens (at most ten tries, as vLLM's
//! `gen_prompt_decode_to_target_len`). Lengths count the content only, without special tokens;
//! the chat template's own tokens are measured once and reported apart.
use super::tokenize::{Method, Tokenizer};
use super::words::WORDS;
use super::workload::{prefix_rng, ranged, request_rng, Prompt};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;

/// Most distinct prompts made for one run; longer runs use them again, in order.
pub const MAX_DISTINCT: usize = 20_000;
/// Tokenizer calls in flight while prompts are made.
const PARALLEL: usize = 8;
/// Decode/encode rounds per prompt (vLLM's `max_retry`).
const TRIES: usize = 10;

/// How a run's prompt lengths were made and how they came out; the result JSON's
/// `prompt_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptTokens {
    pub method: Method,
    /// Tokens the server's chat template adds to each prompt (server tokenizer only).
    pub template_overhead: Option<u32>,
    /// Prompts whose length could not be made exact in ten tries (their real length is used).
    pub inexact_prompts: u64,
    /// Distinct prompts made (a longer run uses them again).
    pub distinct_prompts: u64,
    /// Σ content tokens asked for over completed requests, and what the server counted for
    /// them (`usage.prompt_tokens`: content + template).
    pub asked_total: u64,
    pub sent_total: u64,
    /// Why lengths are estimates, or that the run used its prompts more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The prompts, and how they were made.
pub struct Exact {
    pub prompts: Vec<Prompt>,
    pub info: PromptTokens,
}

/// Token ids to draw prompts from: the tokenizer's own tokens for a text of common words.
async fn pool(tok: &Tokenizer) -> Result<Vec<u32>, String> {
    let text = WORDS.join(" ");
    let mut ids = tok.encode(&text).await?;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err("the tokenizer returned no tokens for a text of common words".into());
    }
    Ok(ids)
}

/// One prompt of exactly `len` content tokens (or as near as ten tries get): (text, tokens).
async fn one(
    tok: &Tokenizer,
    pool: &[u32],
    len: u32,
    rng: &mut StdRng,
) -> Result<(String, u32), String> {
    let want = len as usize;
    let mut seq: Vec<u32> = (0..want)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect();
    let mut text = String::new();
    let mut got = 0;
    for _ in 0..TRIES {
        text = tok.decode(&seq).await?;
        let enc = tok.encode(&text).await?;
        got = enc.len();
        if got == want {
            break;
        }
        seq = enc;
        if got > want {
            seq.truncate(want);
        } else {
            seq.extend((got..want).map(|_| pool[rng.random_range(0..pool.len())]));
        }
    }
    Ok((text, got as u32))
}

/// `n` prompts (at most [`MAX_DISTINCT`]) of `input_len` content tokens each, or drawn within
/// ±`range_ratio` of it per request (each exact), asking `output_len` (likewise ranged).
/// Request `i` is the same for the same seed, as with word prompts.
pub async fn build(
    tok: &Tokenizer,
    n: usize,
    input_len: u32,
    output_len: u32,
    range_ratio: f64,
    seed: u64,
) -> Result<Exact, String> {
    let n = n.clamp(1, MAX_DISTINCT);
    let pool = pool(tok).await?;
    let pool = &pool;
    made_in_parallel(tok, n, |i| async move {
        let mut rng = request_rng(seed, i);
        let inp = ranged(&mut rng, input_len, range_ratio);
        let out = ranged(&mut rng, output_len, range_ratio);
        let (text, got) = one(tok, pool, inp, &mut rng).await?;
        Ok((
            i,
            Prompt {
                text,
                output_len: out,
                input_len_estimate: got,
            },
            got == inp,
        ))
    })
    .await
}

/// A prefix workload with exact lengths: `groups` prefixes of exactly `prefix_len` tokens,
/// each request one of them followed by exactly `suffix_len` tokens of its own (vLLM's
/// `prefix_repetition` does the same). Where the two halves merge into fewer tokens at their
/// seam, the prompt is counted inexact and its real length used.
pub async fn build_prefix(
    tok: &Tokenizer,
    n: usize,
    prefix_len: u32,
    suffix_len: u32,
    groups: u32,
    output_len: u32,
    seed: u64,
) -> Result<Exact, String> {
    let n = n.clamp(1, MAX_DISTINCT);
    let pool = pool(tok).await?;
    let mut prefixes = Vec::new();
    for g in 0..groups.max(1) {
        let mut rng = prefix_rng(seed, g as usize);
        prefixes.push(one(tok, &pool, prefix_len, &mut rng).await?.0);
    }
    let (pool, prefixes) = (&pool, &prefixes);
    made_in_parallel(tok, n, |i| async move {
        let mut rng = request_rng(seed, i);
        let (suffix, _) = one(tok, pool, suffix_len, &mut rng).await?;
        let text = format!(
            "{}{suffix}",
            prefixes[super::workload::prefix_group(i, groups)]
        );
        let got = tok.encode(&text).await?.len() as u32;
        Ok((
            i,
            Prompt {
                text,
                output_len,
                input_len_estimate: got,
            },
            got == prefix_len + suffix_len,
        ))
    })
    .await
}

/// Prompt `i` of `n` made by `make(i)`, [`PARALLEL`] at a time, then ordered.
async fn made_in_parallel<F, Fut>(tok: &Tokenizer, n: usize, make: F) -> Result<Exact, String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(usize, Prompt, bool), String>>,
{
    let made: Vec<Result<(usize, Prompt, bool), String>> = futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    finish(tok, made).await
}

/// Orders what was made and measures the template once.
async fn finish(
    tok: &Tokenizer,
    made: Vec<Result<(usize, Prompt, bool), String>>,
) -> Result<Exact, String> {
    let mut prompts: Vec<(usize, Prompt)> = Vec::with_capacity(made.len());
    let mut inexact = 0;
    for m in made {
        let (i, p, exact) = m?;
        inexact += u64::from(!exact);
        prompts.push((i, p));
    }
    prompts.sort_by_key(|(i, _)| *i);
    let prompts: Vec<Prompt> = prompts.into_iter().map(|(_, p)| p).collect();
    let template_overhead = tok.template_overhead(&prompts[0].text).await?;
    Ok(Exact {
        info: PromptTokens {
            method: tok.method(),
            template_overhead,
            inexact_prompts: inexact,
            distinct_prompts: prompts.len() as u64,
            asked_total: 0,
            sent_total: 0,
            warning: None,
        },
        prompts,
    })
}
