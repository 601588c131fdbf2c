//! OpenAI's chat and completions bodies.
use super::{bad, head, messages, opt_bool, opt_f32, opt_i64, opt_u32, stop};
use super::{BadField, Parsed};
use crate::provider::ChatRequest;
use serde_json::{Map, Value};

/// `stream`, `stream_options.include_usage` and `n` (one choice), alike in OpenAI's chat and
/// completions.
fn openai_stream(m: &Map<String, Value>) -> Result<(bool, bool), BadField> {
    for k in ["n", "best_of"] {
        if let Some(n) = m.get(k).filter(|v| !v.is_null()) {
            if n.as_u64() != Some(1) {
                return Err(bad(
                    k,
                    format!("`{k}` must be 1 through the gateway (one choice per request)"),
                ));
            }
        }
    }
    let stream = opt_bool(m, "stream", false)?;
    let include_usage = match m.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => {
            if !stream {
                return Err(bad(
                    "stream_options",
                    "`stream_options` is only allowed with `stream: true`",
                ));
            }
            opt_bool(o, "include_usage", false).map_err(|_| {
                bad(
                    "stream_options.include_usage",
                    "`stream_options.include_usage` must be true or false",
                )
            })?
        }
        _ => return Err(bad("stream_options", "`stream_options` must be an object")),
    };
    Ok((stream, include_usage))
}

/// The sampling fields OpenAI's chat and completions share.
fn openai_sampling(m: &Map<String, Value>) -> Result<ChatRequest, BadField> {
    Ok(ChatRequest {
        max_tokens: match opt_u32(m, "max_completion_tokens", "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_u32(m, "max_tokens", "max_tokens")?,
        },
        temperature: opt_f32(m, "temperature", "temperature", (0.0, 2.0))?,
        top_p: opt_f32(m, "top_p", "top_p", (0.0, 1.0))?,
        stop: stop(m, "stop")?,
        seed: opt_i64(m, "seed", "seed")?,
        // vLLM's extension (`vllm bench serve` sends it); other routes leave it out.
        ignore_eos: opt_bool(m, "ignore_eos", false)?,
        ..ChatRequest::default()
    })
}

/// `POST /v1/chat/completions`.
pub fn openai_chat(body: &[u8]) -> Result<Parsed, BadField> {
    let (m, model) = head(
        body,
        &[
            ("tools", "the routes behind it may not call tools alike"),
            ("functions", "the routes behind it may not call tools alike"),
            (
                "response_format",
                "not every route can constrain its output",
            ),
            ("logprobs", "not every route returns log probabilities"),
            ("audio", "text only"),
        ],
    )?;
    let (stream, include_usage) = openai_stream(&m)?;
    let req = ChatRequest {
        messages: messages(&m, false)?,
        ..openai_sampling(&m)?
    };
    Ok(Parsed::new(model, req, stream, include_usage))
}

/// `POST /v1/completions`: one raw prompt, sent as it is (no chat template) to the route's
/// `/v1/completions`, or to Ollama's `generate` with `raw`.
pub fn openai_completion(body: &[u8]) -> Result<Parsed, BadField> {
    let (m, model) = head(
        body,
        &[
            ("logprobs", "not every route returns log probabilities"),
            ("echo", "not every route echoes the prompt"),
            ("suffix", "not every route can fill in the middle"),
            ("logit_bias", "not every route takes token biases"),
        ],
    )?;
    let prompt = match m.get("prompt") {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or_default().to_string()
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            return Err(bad(
                "prompt",
                "one prompt per request through the gateway (send the others separately)",
            ))
        }
        Some(Value::Array(_)) => {
            return Err(bad(
                "prompt",
                "token-id prompts are not supported through the gateway (its routes may tokenize differently): send the text",
            ))
        }
        None | Some(Value::Null) => return Err(bad("prompt", "`prompt` is required")),
        _ => return Err(bad("prompt", "`prompt` must be a string")),
    };
    let (stream, include_usage) = openai_stream(&m)?;
    let req = ChatRequest {
        raw_prompt: Some(prompt),
        ..openai_sampling(&m)?
    };
    Ok(Parsed::new(model, req, stream, include_usage))
}
