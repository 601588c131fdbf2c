//! How a failure reaches the client: the status (the upstream's own where it had one), the
//! error body in the client's dialect, and when it may try again.
use super::dialect::{self, Dialect};
use super::Shared;
use crate::provider::router::RouteFailure;
use crate::provider::ErrorClass;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The HTTP status a failure is answered with: the upstream's own where it had one (a 429
/// stays a 429, so the client's SDK backs off), else what the class means for a gateway. A
/// circuit held open by an upstream's `Retry-After` on a 429 is still a 429.
pub fn failure_status(shared: &Shared, f: &RouteFailure) -> u16 {
    use ErrorClass::*;
    if f.error.class == CircuitOpen {
        let live = shared.live();
        let limited = f
            .attempts
            .iter()
            .flat_map(|a| live.router.circuits(&a.route))
            .any(|(_, c)| c.reopens_in_ms.is_some() && c.last_class == Some(RateLimited));
        if limited {
            return 429;
        }
    }
    match (f.error.class, f.error.status) {
        // Our keys upstream were refused: not the client's key, so not a 401 for it.
        (Auth, _) => 502,
        (_, Some(s)) if (400..600).contains(&s) => s,
        (RateLimited, _) => 429,
        (Overloaded | CircuitOpen, _) => 503,
        (ConnectTimeout | HeadersTimeout | FirstTokenTimeout | IdleTimeout | TotalTimeout, _) => {
            504
        }
        (ContextLength | BadRequest, _) => 400,
        (NotFound, _) => 404,
        _ => 502,
    }
}

fn openai_type(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_error",
        400 | 404 | 413 => "invalid_request_error",
        401 => "authentication_error",
        _ => "server_error",
    }
}

/// A response with a JSON error body in the dialect's shape.
pub fn error_response(
    d: Dialect,
    status: u16,
    message: &str,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Response {
    let body = dialect::error_body(d, message, openai_type(status), None, code);
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(ra) = retry_after {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(dialect::retry_after_secs(ra)),
        );
    }
    r
}

/// When the client may try again: the upstream's `Retry-After`, or the earliest moment an
/// open circuit on the way may be probed.
pub fn retry_after(shared: &Shared, f: &RouteFailure, status: u16) -> Option<Duration> {
    if let Some(d) = f.error.retry_after {
        return Some(d);
    }
    let live = shared.live();
    let routes: Vec<String> = f.attempts.iter().map(|a| a.route.clone()).collect();
    routes
        .iter()
        .flat_map(|r| live.router.circuits(r))
        .filter_map(|(_, c)| c.reopens_in_ms)
        .min()
        .map(Duration::from_millis)
        .filter(|_| matches!(status, 429 | 503))
}
