//! Ollama's chat and generate bodies, with its `options`.
use super::{bad, head, messages, opt_bool, opt_f32, opt_i64, stop};
use super::{BadField, Parsed};
use crate::provider::{ChatRequest, Message};
use serde_json::{Map, Value};

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

/// Fields Ollama's endpoints take that the gateway cannot carry to every route.
const OLLAMA_REFUSED: &[(&str, &str)] = &[
    ("tools", "the routes behind it may not call tools alike"),
    ("format", "not every route can constrain its output"),
    ("images", "images are not supported through the gateway"),
    ("suffix", "not every route can fill in the middle"),
    (
        "context",
        "the deprecated `context` cannot be carried to other servers",
    ),
];

/// `POST /api/chat`. No `messages` at all is Ollama's load request (answered at once).
pub fn ollama_chat(body: &[u8]) -> Result<Parsed, BadField> {
    let (m, model) = head(body, OLLAMA_REFUSED)?;
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
    Ok(Parsed::new(model, req, stream, false))
}

/// `POST /api/generate`: the prompt (and `system`) as a chat, which is what Ollama does with
/// its template; a `raw` prompt goes as it is, as a raw completion.
pub fn ollama_generate(body: &[u8]) -> Result<Parsed, BadField> {
    let (m, model) = head(body, OLLAMA_REFUSED)?;
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
    Ok(Parsed::new(model, req, stream, false))
}
