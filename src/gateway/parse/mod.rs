//! Request bodies of both dialects into the provider layer's `ChatRequest`, with a 400 that
//! names the field at fault. Fields that would change the answer and that the gateway cannot
//! carry (tools, images, several choices, a JSON format) are refused, never dropped silently.
use crate::provider::{ChatRequest, Message};
use serde_json::{Map, Value};

mod ollama;
mod openai;
pub use ollama::{ollama_chat, ollama_generate};
pub use openai::{openai_chat, openai_completion};

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

/// The body as an object, its model, and none of the `refused` fields.
fn head(body: &[u8], refused: &[(&str, &str)]) -> Result<(Map<String, Value>, String), BadField> {
    let m = object(body)?;
    let model = model(&m)?;
    refuse(&m, refused)?;
    Ok((m, model))
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

impl Parsed {
    pub fn new(model: String, req: ChatRequest, stream: bool, include_usage: bool) -> Self {
        Parsed {
            model,
            req,
            stream,
            include_usage,
        }
    }
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
