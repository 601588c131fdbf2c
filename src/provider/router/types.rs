//! What the router is configured with and what it answers: policies, timeouts, routes,
//! attempts, who served a request, and failures.
use crate::provider::error::{ErrorClass, ProviderError};
use crate::provider::pool::Target;
use crate::provider::{ChatResponse, EventStream, ProviderKind};
use serde::Serialize;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// TCP connect (set on the HTTP client).
    pub connect: Duration,
    /// Request sent -> response headers.
    pub headers: Duration,
    /// Headers -> first content.
    pub first_token: Duration,
    /// Longest gap between two chunks.
    pub idle: Duration,
    /// The whole request, retries and fallbacks included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            headers: Duration::from_secs(30),
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

/// How deep fallbacks of fallbacks go (LiteLLM's `ROUTER_MAX_FALLBACKS`).
pub const MAX_FALLBACK_DEPTH: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct RouterPolicy {
    /// Attempts across all targets and fallbacks of one request (probes not counted).
    pub max_attempts: u32,
    pub timeouts: Timeouts,
    /// Longest wait for a cooling target (or a backoff) before giving up.
    pub max_wait: Duration,
    pub backoff_base: Duration,
}

impl Default for RouterPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            timeouts: Timeouts::default(),
            max_wait: Duration::from_secs(5),
            backoff_base: Duration::from_millis(500),
        }
    }
}

/// A named route: its targets (one, or several for an Ollama pool) and where to go next.
pub struct RouteEntry {
    pub name: String,
    pub kind: ProviderKind,
    pub targets: Vec<Arc<Target>>,
    pub fallback: Vec<String>,
    pub context_fallback: Vec<String>,
    /// Overrides the policy's total timeout (the config's `params.timeout`).
    pub total_timeout: Option<Duration>,
    /// Round-robin position among equally good targets.
    pub turn: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub route: String,
    pub target: String,
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServedBy {
    pub route: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
}

pub struct RoutedStream {
    pub stream: EventStream,
    pub served_by: ServedBy,
    pub attempts: Vec<Attempt>,
    /// When the request was made: the origin for TTFT and E2E.
    pub started: Instant,
}

#[derive(Debug, Clone)]
pub struct RoutedResponse {
    pub response: ChatResponse,
    pub served_by: ServedBy,
    pub attempts: Vec<Attempt>,
    pub started: Instant,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct RouteFailure {
    pub route: String,
    pub attempts: Vec<Attempt>,
    pub error: ProviderError,
}

impl std::fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "route `{}` failed: {}", self.route, self.error)?;
        for a in &self.attempts {
            write!(f, "\n  - {} {}: {}", a.route, a.target, a.class)?;
            if let Some(s) = a.status {
                write!(f, " (HTTP {s})")?;
            }
            write!(f, ": {}", a.message)?;
        }
        Ok(())
    }
}

/// What the router tells a watcher as one request goes (the gateway's live feed): each
/// attempt as it starts, its response head, and each failure as it happens.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// An attempt starts on a target: its number among the request's attempts.
    Trying {
        route: &'a str,
        target: &'a str,
        n: u32,
    },
    /// The target answered with its headers; the first token is awaited.
    Headers,
    /// An attempt failed (or a target was skipped: its circuit is open).
    Failed(&'a Attempt),
}

/// A watcher of [`Step`]s; `&|_| {}` watches nothing.
pub type Watch<'w> = &'w (dyn Fn(Step<'_>) + Send + Sync);

/// Keeps something alive as long as the router (the built-in simulator's server).
pub type Keepalive = Box<dyn std::any::Any + Send + Sync>;
