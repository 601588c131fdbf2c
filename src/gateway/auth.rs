//! Client keys: `name=key` pairs from the variable `gateway.keys_env` names, compared in
//! constant time. Only a key's name is ever shown (logs, metrics, the console).
use super::dialect::Dialect;
use super::errors::error_response;
use super::{Live, Shared};
use axum::http::HeaderMap;
use axum::response::Response;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<(String, crate::secret::Secret)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Keys").field("names", &names).finish()
    }
}

impl Keys {
    /// Reads `NAME=KEY,NAME=KEY` from `var`; the error names the variable, never a value.
    pub fn from_env(var: &str) -> Result<Self, String> {
        let text = std::env::var(var).map_err(|_| {
            format!("`{var}` (gateway.keys_env) is not set: it must hold the client keys as name=key pairs separated by commas")
        })?;
        Self::parse(&text).map_err(|e| format!("`{var}` (gateway.keys_env): {e}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, pair) in text.split(',').map(str::trim).enumerate() {
            if pair.is_empty() {
                continue;
            }
            match pair.split_once('=') {
                Some((n, k)) if !n.trim().is_empty() && !k.trim().is_empty() => {
                    keys.push((n.trim().to_string(), crate::secret::Secret::new(k.trim())));
                }
                _ => return Err(format!("entry {} is not name=key", i + 1)),
            }
        }
        if keys.is_empty() {
            return Err("holds no name=key pair".into());
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name of the key `presented` matches. Every key is compared, whichever matches.
    pub fn check(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (name, key) in &self.keys {
            if bool::from(key.expose().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// The key a request presents: `Authorization: Bearer KEY` (OpenAI's SDK, and the Ollama
/// client's `headers`) or `x-api-key`.
pub fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim(),
        );
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// The client's name (its key's name), or a 401 in its dialect. Without keys (loopback only)
/// the client is known by its address.
#[allow(clippy::result_large_err)]
pub(super) fn authorize(
    sh: &Shared,
    live: &Live,
    headers: &HeaderMap,
    d: Dialect,
    peer: SocketAddr,
) -> Result<String, Response> {
    if live.keys.is_empty() {
        return Ok(peer.ip().to_string());
    }
    match super::auth::presented(headers).and_then(|k| live.keys.check(k)) {
        Some(name) => Ok(name.to_string()),
        None => {
            sh.metrics.refused("unauthorized");
            sh.feed.refused();
            Err(error_response(d, 401, "missing or unknown API key: send `Authorization: Bearer KEY` with a key from the gateway's client keys", Some("invalid_api_key"), None))
        }
    }
}

/// A request whose key passed (or that needs none): the config it is served under. The
/// extractor answers 401 in OpenAI's shape for the endpoints that are not a dialect's own
/// (`/v1/models`, `/metrics`, the feed); `OllamaCaller` in Ollama's.
pub(super) struct Caller(pub std::sync::Arc<Live>);
pub(super) struct OllamaCaller(pub std::sync::Arc<Live>);

#[allow(clippy::result_large_err)] // as authorize: the Err is the answer itself
fn admit_parts(
    sh: &std::sync::Arc<Shared>,
    parts: &axum::http::request::Parts,
    d: Dialect,
) -> Result<std::sync::Arc<Live>, Response> {
    let live = sh.live();
    let peer = parts
        .extensions
        .get::<SocketAddr>()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    authorize(sh, &live, &parts.headers, d, peer)?;
    Ok(live)
}

impl axum::extract::FromRequestParts<std::sync::Arc<Shared>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        sh: &std::sync::Arc<Shared>,
    ) -> Result<Self, Response> {
        admit_parts(sh, parts, Dialect::OpenAi).map(Caller)
    }
}

impl axum::extract::FromRequestParts<std::sync::Arc<Shared>> for OllamaCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        sh: &std::sync::Arc<Shared>,
    ) -> Result<Self, Response> {
        admit_parts(sh, parts, Dialect::Ollama).map(OllamaCaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_match_by_name() {
        let k = Keys::parse("rag=sk-one, batch=sk-two").unwrap();
        assert_eq!(k.check("sk-two"), Some("batch"));
        assert_eq!(k.check("sk-one"), Some("rag"));
        assert_eq!(k.check("sk-on"), None);
        assert_eq!(k.check(""), None);
        assert!(!format!("{k:?}").contains("sk-"), "{k:?}");
        assert!(Keys::parse("rag").unwrap_err().contains("entry 1"));
        assert!(Keys::parse(" , ").is_err());
    }
}
