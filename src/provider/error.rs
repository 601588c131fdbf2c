//! Error classes and how a server's answer maps onto them (DESIGN.md §4).
use serde::Serialize;
use std::time::Duration;

/// What went wrong, decided from transport state, status and body; the router acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Refused, DNS or TLS failure: nothing was sent.
    Connect,
    ConnectTimeout,
    HeadersTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    TotalTimeout,
    /// 429.
    RateLimited,
    /// 503 (vLLM admission control, Ollama queue full).
    Overloaded,
    /// 500, 502, 504 and other 5xx.
    Server,
    ContextLength,
    /// 401, 403.
    Auth,
    /// 429 `insufficient_quota`: not retryable despite the status.
    Quota,
    /// 404: the model (or the endpoint) is not on this target.
    NotFound,
    /// Other 4xx: the caller's request is at fault.
    BadRequest,
    /// The body broke off, was malformed, or ended without its terminator.
    StreamBroken,
    /// The target's circuit is open; it was not tried.
    CircuitOpen,
    Cancelled,
    /// A 2xx answer whose body could not be understood.
    Decode,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::ConnectTimeout => "connect_timeout",
            ErrorClass::HeadersTimeout => "headers_timeout",
            ErrorClass::FirstTokenTimeout => "first_token_timeout",
            ErrorClass::IdleTimeout => "idle_timeout",
            ErrorClass::TotalTimeout => "total_timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Server => "server",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::Auth => "auth",
            ErrorClass::Quota => "quota",
            ErrorClass::NotFound => "not_found",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::StreamBroken => "stream_broken",
            ErrorClass::CircuitOpen => "circuit_open",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::Decode => "decode",
        }
    }

    /// What the router does next after an attempt failed with this class.
    pub fn disposition(self) -> Disposition {
        use ErrorClass::*;
        match self {
            BadRequest | Cancelled => Disposition::ReturnToCaller,
            ContextLength => Disposition::LargerContext,
            TotalTimeout => Disposition::Stop,
            _ => Disposition::NextTarget,
        }
    }

    /// Whether trying the same target again later in this request could succeed. A missing
    /// model, a rejected key or an empty quota stays so for the whole request.
    pub fn is_transient(self) -> bool {
        use ErrorClass::*;
        matches!(
            self,
            Connect
                | ConnectTimeout
                | HeadersTimeout
                | FirstTokenTimeout
                | IdleTimeout
                | RateLimited
                | Overloaded
                | Server
                | StreamBroken
                | CircuitOpen
        )
    }

    /// Whether the failure says something about the target's health (and so feeds its circuit).
    pub fn counts_against_target(self) -> bool {
        !matches!(
            self,
            ErrorClass::BadRequest
                | ErrorClass::ContextLength
                | ErrorClass::Cancelled
                | ErrorClass::CircuitOpen
                | ErrorClass::TotalTimeout
        )
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    NextTarget,
    LargerContext,
    ReturnToCaller,
    Stop,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ProviderError {
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} (HTTP {s}): {}", self.class, self.message),
            None => write!(f, "{}: {}", self.class, self.message),
        }
    }
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Maps a transport error from reqwest onto a class, keeping the root cause's text.
    pub fn from_reqwest(e: &reqwest::Error, during_body: bool) -> Self {
        let class_probe = e.is_connect();
        // For a refused connection the innermost cause says it all ("Connection refused").
        let msg = if class_probe {
            innermost(e)
        } else {
            root_cause(e)
        };
        let class = if during_body {
            if e.is_timeout() {
                ErrorClass::IdleTimeout
            } else {
                ErrorClass::StreamBroken
            }
        } else if e.is_connect() {
            if e.is_timeout() || msg.contains("timed out") {
                ErrorClass::ConnectTimeout
            } else {
                ErrorClass::Connect
            }
        } else if e.is_timeout() {
            ErrorClass::HeadersTimeout
        } else if e.is_decode() {
            ErrorClass::Decode
        } else {
            // Sent but the connection died before a status line: the server went away.
            ErrorClass::StreamBroken
        };
        Self::new(class, msg)
    }
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    let t = cur.to_string();
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => t,
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The parts of an error body the classifier needs, whatever envelope the server used.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    pub kind: Option<String>,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// Reads the envelopes seen in the wild: OpenAI/vLLM `{"error":{...}}` (code string or int),
/// vLLM's pre-0.10.1 flat `{"object":"error",...}`, vLLM's 401 and Ollama's `{"error":"..."}`,
/// and FastAPI's `{"detail":...}`.
pub fn parse_error_body(body: &str) -> ErrorBody {
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            let t = body.trim();
            return ErrorBody {
                message: if t.is_empty() {
                    "(empty body)".into()
                } else {
                    truncate(t, 300)
                },
                ..ErrorBody::default()
            };
        }
    };
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    let obj = match v.get("error") {
        Some(serde_json::Value::String(msg)) => {
            return ErrorBody {
                message: msg.clone(),
                ..ErrorBody::default()
            }
        }
        Some(e @ serde_json::Value::Object(_)) => e.clone(),
        _ if v.get("object").and_then(|o| o.as_str()) == Some("error") => v.clone(),
        _ => {
            if let Some(d) = v.get("detail") {
                return ErrorBody {
                    message: s(d).unwrap_or_default(),
                    ..ErrorBody::default()
                };
            }
            return ErrorBody {
                message: truncate(body.trim(), 300),
                ..ErrorBody::default()
            };
        }
    };
    ErrorBody {
        message: obj.get("message").and_then(s).unwrap_or_default(),
        kind: obj.get("type").and_then(s),
        param: obj.get("param").and_then(s),
        code: obj.get("code").and_then(s),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn is_context_length(b: &ErrorBody) -> bool {
    let m = b.message.to_ascii_lowercase();
    m.contains("maximum context length")
        || m.contains("max_model_len")
        || m.contains("context length")
        || m.contains("context window")
        || b.code.as_deref() == Some("context_length_exceeded")
        || matches!(
            b.param.as_deref(),
            Some("input_tokens" | "max_tokens" | "max_completion_tokens")
        )
}

/// Classifies an HTTP error answer (status + body + Retry-After).
pub fn classify_http(status: u16, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let b = parse_error_body(body);
    let class = match status {
        401 | 403 => ErrorClass::Auth,
        404 => ErrorClass::NotFound,
        429 if b.code.as_deref() == Some("insufficient_quota")
            || b.kind.as_deref() == Some("insufficient_quota") =>
        {
            ErrorClass::Quota
        }
        429 => ErrorClass::RateLimited,
        503 => ErrorClass::Overloaded,
        408 => ErrorClass::HeadersTimeout,
        400 | 413 | 422 if is_context_length(&b) => ErrorClass::ContextLength,
        400..=499 => ErrorClass::BadRequest,
        _ => ErrorClass::Server,
    };
    let message = if b.message.is_empty() {
        format!("HTTP {status}")
    } else {
        b.message
    };
    ProviderError {
        class,
        status: Some(status),
        message,
        retry_after,
    }
}

/// An error object sent inside a 200 stream (`data: {"error":...}` or an NDJSON error line).
pub fn classify_in_band(value: &serde_json::Value) -> ProviderError {
    let body = value.to_string();
    let b = parse_error_body(&body);
    let status = b
        .code
        .as_deref()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (400..600).contains(c));
    let mut e = match status {
        Some(s) => classify_http(s, &body, None),
        None => ProviderError::new(ErrorClass::Server, b.message.clone()),
    };
    e.message = format!("error inside the stream: {}", e.message);
    e
}

/// `retry-after-ms` first, then `retry-after` as seconds (float) or an HTTP date.
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        // NaN is no hint; `inf` and the like mean "long": the router's wait bound decides.
        if ms >= 0.0 {
            return Some(crate::input::duration(ms / 1000.0));
        }
    }
    let v = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then(|| crate::input::duration(secs));
    }
    let when = httpdate::parse_http_date(&v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn with(name: &'static str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    /// A server's header must not crash us: `inf` and huge values used to panic in
    /// `Duration::from_secs_f64`. They are read as the longest wait; NaN is no hint at all.
    #[test]
    fn any_retry_after_a_server_sends_is_read_without_panicking() {
        let longest = crate::input::duration(f64::INFINITY);
        for v in ["inf", "1e300", "18446744073709551616"] {
            assert_eq!(
                parse_retry_after(&with("retry-after", v)),
                Some(longest),
                "{v}"
            );
            assert_eq!(
                parse_retry_after(&with("retry-after-ms", v)),
                Some(longest),
                "{v}"
            );
        }
        assert_eq!(parse_retry_after(&with("retry-after", "NaN")), None);
        assert_eq!(parse_retry_after(&with("retry-after", "-3")), None);
        assert_eq!(
            parse_retry_after(&with("retry-after", "1.5")),
            Some(Duration::from_millis(1500))
        );
    }
}
