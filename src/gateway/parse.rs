//! Request bodies of both dialects into the provider layer's `ChatRequest`, with a 400 that
//! names the field at fault. Fields that would change the answer and that the gateway cannot
//! carry (tools, images, several choices, a JSON format) are refused, never dropped silently.
use crate::provider::{ChatRequest, Message};
use serde_json::{Map, Value};

/// A request body's fault, with the field it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct BadField {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> BadField {
    BadField {
        field: field.into(),
        message: message.into(),
    }
}

pub fn object(body: &[u8]) -> Result<Map<String, Value>, BadField> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("body", "the body must be a JSON object")),
        Err(e) => Err(bad("body", format!("the body is not valid JSON ({e})"))),
    }
}

pub fn model(m: &Map<String, Value>) -> Result<String, BadField> {
    match m.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(bad("model", "`model` is required")),
        _ => Err(bad("model", "`model` must be a non-empty string")),
    }
}

fn opt_bool(m: &Map<String, Value>, k: &str, default: bool) -> Result<bool, BadField> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(bad(k, format!("`{k}` must be true or false"))),
    }
}

fn opt_f32(
    m: &Map<String, Value>,
    k: &str,
    at: &str,
    range: (f64, f64),
) -> Result<Option<f32>, BadField> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x >= range.0 && x <= range.1 => Ok(Some(x as f32)),
            _ => Err(bad(
                at,
                format!("`{at}` must be a number from {} to {}", range.0, range.1),
            )),
        },
    }
}

fn opt_u32(m: &Map<String, Value>, k: &str, at: &str) -> Result<Option<u32>, BadField> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(bad(
                at,
                format!("`{at}` must be a whole number of at least 1"),
            )),
        },
    }
}

fn opt_i64(m: &Map<String, Value>, k: &str, at: &str) -> Result<Option<i64>, BadField> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(at, format!("`{at}` must be a whole number"))),
    }
}

fn stop(m: &Map<String, Value>, at: &str) -> Result<Vec<String>, BadField> {
    match m.get("stop") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad(format!("{at}[{i}]"), "a stop sequence must be a string"))
            })
            .collect(),
        _ => Err(bad(
            at,
            format!("`{at}` must be a string or a list of strings"),
        )),
    }
}

/// Refuses fields whose meaning the gateway cannot carry to every route.
fn refuse(m: &Map<String, Value>, fields: &[(&str, &str)]) -> Result<(), BadField> {
    for (k, why) in fields {
        match m.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(bad(
                    *k,
                    format!("`{k}` is not supported through the gateway: {why}"),
                ))
            }
        }
    }
    Ok(())
}

fn content(v: &Value, at: &str) -> Result<String, BadField> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        // OpenAI's content parts: text parts are joined; other kinds cannot be carried.
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    _ => {
                        return Err(bad(
                            format!("{at}[{j}]"),
                            "only text content parts are supported through the gateway",
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(bad(at, format!("`{at}` must be a string"))),
    }
}

fn messages(m: &Map<String, Value>, images: bool) -> Result<Vec<Message>, BadField> {
    let Some(list) = m.get("messages") else {
        return Err(bad("messages", "`messages` is required"));
    };
    let Value::Array(list) = list else {
        return Err(bad("messages", "`messages` must be a list"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, msg) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(o) = msg else {
            return Err(bad(
                at,
                "a message must be an object with `role` and `content`",
            ));
        };
        let role = match o.get("role") {
            Some(Value::String(r)) if !r.is_empty() => r.clone(),
            _ => return Err(bad(format!("{at}.role"), "`role` must be a string")),
        };
        if images {
            if let Some(Value::Array(a)) = o.get("images") {
                if !a.is_empty() {
                    return Err(bad(
                        format!("{at}.images"),
                        "images are not supported through the gateway",
                    ));
                }
            }
        }
        if o.get("tool_calls")
            .is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(bad(
                format!("{at}.tool_calls"),
                "tool calls are not supported through the gateway",
            ));
        }
        let c = content(
            o.get("content").unwrap_or(&Value::Null),
            &format!("{at}.content"),
        )?;
        out.push(Message { role, content: c });
    }
    Ok(out)
}

/// What a parsed request asks for, beside the `ChatRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub model: String,
    pub req: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
}

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
    let m = object(body)?;
    let model = model(&m)?;
    refuse(
        &m,
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
    Ok(Parsed {
        model,
        req,
        stream,
        include_usage,
    })
}

/// `POST /v1/completions`: one raw prompt, sent as it is (no chat template) to the route's
/// `/v1/completions`, or to Ollama's `generate` with `raw`.
pub fn openai_completion(body: &[u8]) -> Result<Parsed, BadField> {
    let m = object(body)?;
    let model = model(&m)?;
    refuse(
        &m,
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
    Ok(Parsed {
        model,
        req,
        stream,
        include_usage,
    })
}

/// Ollama's `options` (those that map onto a route's parameters; load-time ones such as
/// `num_ctx` belong to the server and are left to it).
fn ollama_options(m: &Map<String, Value>, req: &mut ChatRequest) -> Result<(), BadField> {
    let o = match m.get("options") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(o)) => o,
        _ => return Err(bad("options", "`options` must be an object")),
    };
    req.temperature = opt_f32(o, "temperature", "options.temperature", (0.0, 2.0))?;
    req.top_p = opt_f32(o, "top_p", "options.top_p", (0.0, 1.0))?;
    // -1 (and -2) mean "no limit" to Ollama.
    req.max_tokens = match o.get("num_predict") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if n < 0 => None,
            Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Some(n as u32),
            _ => {
                return Err(bad(
                    "options.num_predict",
                    "`options.num_predict` must be a whole number (-1 for no limit)",
                ))
            }
        },
    };
    req.stop = stop(o, "options.stop")?;
    req.seed = opt_i64(o, "seed", "options.seed")?.filter(|s| *s >= 0);
    Ok(())
}

fn ollama_common(m: &Map<String, Value>) -> Result<(), BadField> {
    refuse(
        m,
        &[
            ("tools", "the routes behind it may not call tools alike"),
            ("format", "not every route can constrain its output"),
            ("images", "images are not supported through the gateway"),
            ("suffix", "not every route can fill in the middle"),
            (
                "context",
                "the deprecated `context` cannot be carried to other servers",
            ),
        ],
    )
}

/// `POST /api/chat`. No `messages` at all is Ollama's load request (answered at once).
pub fn ollama_chat(body: &[u8]) -> Result<Parsed, BadField> {
    let m = object(body)?;
    let model = model(&m)?;
    ollama_common(&m)?;
    let stream = opt_bool(&m, "stream", true)?;
    let mut req = ChatRequest {
        messages: if m.get("messages").is_none_or(Value::is_null) {
            vec![]
        } else {
            messages(&m, true)?
        },
        ..ChatRequest::default()
    };
    ollama_options(&m, &mut req)?;
    Ok(Parsed {
        model,
        req,
        stream,
        include_usage: false,
    })
}

/// `POST /api/generate`: the prompt (and `system`) as a chat, which is what Ollama does with
/// its template; a `raw` prompt goes as it is, as a raw completion.
pub fn ollama_generate(body: &[u8]) -> Result<Parsed, BadField> {
    let m = object(body)?;
    let model = model(&m)?;
    ollama_common(&m)?;
    let raw = opt_bool(&m, "raw", false)?;
    if m.get("template").is_some_and(|t| !t.is_null()) {
        return Err(bad("template", "`template` is not supported through the gateway (its routes apply their own chat template)"));
    }
    let stream = opt_bool(&m, "stream", true)?;
    let mut messages = Vec::new();
    match m.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(Message::system(s.clone())),
        _ => return Err(bad("system", "`system` must be a string")),
    }
    match m.get("prompt") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) => {
            if !p.is_empty() {
                messages.push(Message::user(p.clone()));
            }
        }
        _ => return Err(bad("prompt", "`prompt` must be a string")),
    }
    if messages.iter().all(|m| m.role == "system") {
        messages.clear();
    }
    let raw_prompt = match (raw, messages.pop()) {
        (true, Some(p)) if p.role == "user" => Some(p.content),
        (true, _) => return Err(bad("prompt", "a `raw` request needs a `prompt`")),
        (false, last) => {
            messages.extend(last);
            None
        }
    };
    if raw_prompt.is_some() {
        // Ollama ignores `system` in raw mode: the prompt is all.
        messages.clear();
    }
    let mut req = ChatRequest {
        messages,
        raw_prompt,
        ..ChatRequest::default()
    };
    ollama_options(&m, &mut req)?;
    Ok(Parsed {
        model,
        req,
        stream,
        include_usage: false,
    })
}

/// An embeddings request of either dialect: its inputs, and whether OpenAI's client asked for
/// base64 (its Python SDK does by default).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedAsk {
    pub model: String,
    pub inputs: Vec<String>,
    pub base64: bool,
}

/// `POST /v1/embeddings` and Ollama's `POST /api/embed`.
pub fn embed(body: &[u8]) -> Result<EmbedAsk, BadField> {
    let m = object(body)?;
    let model = model(&m)?;
    let inputs = match m.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad(format!("input[{i}]"), "an input must be a string (token arrays are not supported through the gateway)"))
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => return Err(bad("input", "`input` is required")),
        _ => return Err(bad("input", "`input` must be a string or a non-empty list of strings")),
    };
    let base64 = match m.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        _ => {
            return Err(bad(
                "encoding_format",
                "`encoding_format` must be float or base64",
            ))
        }
    };
    if m.get("dimensions").is_some_and(|d| !d.is_null()) {
        return Err(bad(
            "dimensions",
            "`dimensions` is not supported through the gateway",
        ));
    }
    Ok(EmbedAsk {
        model,
        inputs,
        base64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_fields_map_and_faults_name_their_field() {
        let p = openai_chat(br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":7,"temperature":0.5,"stop":"x","seed":3}"#).unwrap();
        assert!(p.stream && p.include_usage);
        assert_eq!(p.req.messages[1].content, "ab");
        assert_eq!(
            (p.req.max_tokens, p.req.temperature, p.req.seed),
            (Some(7), Some(0.5), Some(3))
        );
        assert_eq!(p.req.stop, ["x"]);
        for (body, field) in [
            (&br#"[1]"#[..], "body"),
            (
                br#"{"model":"m","messages":[{"role":"user","content":1}]}"#,
                "messages[0].content",
            ),
            (br#"{"messages":[]}"#, "model"),
            (br#"{"model":"m"}"#, "messages"),
            (br#"{"model":"m","messages":[],"n":2}"#, "n"),
            (
                br#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#,
                "tools",
            ),
            (
                br#"{"model":"m","messages":[],"stream_options":{"include_usage":true}}"#,
                "stream_options",
            ),
            (
                br#"{"model":"m","messages":[],"temperature":"hot"}"#,
                "temperature",
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "messages[0].content[0]",
            ),
        ] {
            assert_eq!(
                openai_chat(body).unwrap_err().field,
                field,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn ollama_options_map_and_generate_becomes_a_chat() {
        let p = ollama_chat(br#"{"model":"qwen2.5:0.5b","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5,"temperature":0,"stop":["\n"],"seed":1,"num_ctx":4096}}"#).unwrap();
        assert!(p.stream, "Ollama streams unless told not to");
        assert_eq!(
            (p.req.max_tokens, p.req.temperature, p.req.seed),
            (Some(5), Some(0.0), Some(1))
        );
        let p = ollama_chat(
            br#"{"model":"m","messages":[],"stream":false,"options":{"num_predict":-1}}"#,
        )
        .unwrap();
        assert!(!p.stream && p.req.max_tokens.is_none());
        let g = ollama_generate(br#"{"model":"m","prompt":"why?","system":"be brief"}"#).unwrap();
        assert_eq!(
            g.req.messages,
            [Message::system("be brief"), Message::user("why?")]
        );
        let raw =
            ollama_generate(br#"{"model":"m","prompt":"x","system":"s","raw":true}"#).unwrap();
        assert_eq!(raw.req.raw_prompt.as_deref(), Some("x"));
        assert!(raw.req.messages.is_empty(), "raw mode has no system");
        assert_eq!(
            ollama_generate(br#"{"model":"m","raw":true}"#)
                .unwrap_err()
                .field,
            "prompt"
        );
        assert_eq!(
            ollama_chat(br#"{"model":"m","messages":[],"format":"json"}"#)
                .unwrap_err()
                .field,
            "format"
        );
        assert_eq!(
            ollama_chat(
                br#"{"model":"m","messages":[{"role":"user","content":"x","images":["aGk="]}]}"#
            )
            .unwrap_err()
            .field,
            "messages[0].images"
        );
    }

    #[test]
    fn a_completion_is_one_raw_prompt() {
        let p = openai_completion(
            br#"{"model":"m","prompt":["def f("],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true},"stop":"\n"}"#,
        )
        .unwrap();
        assert_eq!(p.req.raw_prompt.as_deref(), Some("def f("));
        assert!(p.req.messages.is_empty());
        assert_eq!(p.req.max_tokens, Some(8));
        assert_eq!(p.req.stop, ["\n"]);
        assert!(p.stream && p.include_usage);
        for (body, field) in [
            (&br#"{"model":"m"}"#[..], "prompt"),
            (br#"{"model":"m","prompt":["a","b"]}"#, "prompt"),
            (br#"{"model":"m","prompt":[1,2,3]}"#, "prompt"),
            (br#"{"model":"m","prompt":"x","echo":true}"#, "echo"),
            (br#"{"model":"m","prompt":"x","best_of":2}"#, "best_of"),
            (br#"{"model":"m","prompt":"x","logprobs":1}"#, "logprobs"),
        ] {
            assert_eq!(openai_completion(body).unwrap_err().field, field);
        }
    }
}
