//! vLLM's own view from `/metrics`: queue, KV cache, token counters and their rates, and
//! latency percentiles over the last window. Names change between versions, so each value is
//! looked up under its old and new names; several engines (data parallel) are summed.
use super::prometheus::{Filter, Histogram, Page};
use serde::Serialize;
use std::time::Instant;

const RUNNING: &[&str] = &["vllm:num_requests_running"];
const WAITING: &[&str] = &["vllm:num_requests_waiting"];
const KV: &[&str] = &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"];
const PROMPT: &[&str] = &["vllm:prompt_tokens_total"];
const GEN: &[&str] = &["vllm:generation_tokens_total"];
const PREEMPT: &[&str] = &["vllm:num_preemptions_total"];
const PREFIX_Q: &[&str] = &[
    "vllm:prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_queries_total",
];
const PREFIX_H: &[&str] = &[
    "vllm:prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_hits_total",
];
const SUCCESS: &[&str] = &["vllm:request_success_total"];
const TTFT: &[&str] = &["vllm:time_to_first_token_seconds"];
const E2E: &[&str] = &["vllm:e2e_request_latency_seconds"];
const ITL: &[&str] = &[
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",
];

/// The raw readings of one scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub at: Instant,
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    pub kv_cache_usage: Option<f64>,
    pub prompt_tokens_total: Option<f64>,
    pub generation_tokens_total: Option<f64>,
    pub preemptions_total: Option<f64>,
    pub prefix_queries_total: Option<f64>,
    pub prefix_hits_total: Option<f64>,
    pub requests_total: Option<f64>,
    pub ttft: Option<Histogram>,
    pub e2e: Option<Histogram>,
    pub itl: Option<Histogram>,
    pub model_names: Vec<String>,
    pub engines: usize,
}

impl Scrape {
    /// Reads a page; `model` keeps only that model's series when given (a missing
    /// `model_name` label, as in very old releases, is then a wildcard).
    pub fn from_page(page: &Page, model: Option<&str>, at: Instant) -> Scrape {
        let models = page.label_values("vllm:num_requests_running", "model_name");
        let with_model: Vec<(&str, &str)> = model
            .filter(|m| models.iter().any(|x| x == m))
            .map(|m| vec![("model_name", m)])
            .unwrap_or_default();
        let f: Filter = &with_model;
        let engines = page
            .label_values("vllm:num_requests_running", "engine")
            .len()
            .max(usize::from(page.sum_any(RUNNING, f).is_some()));
        Scrape {
            at,
            running: page.sum_any(RUNNING, f),
            waiting: page.sum_any(WAITING, f),
            // A fraction per engine: the mean, not the sum, is the fullness.
            kv_cache_usage: page.sum_any(KV, f).map(|v| v / engines.max(1) as f64),
            prompt_tokens_total: page.sum_any(PROMPT, f),
            generation_tokens_total: page.sum_any(GEN, f),
            preemptions_total: page.sum_any(PREEMPT, f),
            prefix_queries_total: page.sum_any(PREFIX_Q, f),
            prefix_hits_total: page.sum_any(PREFIX_H, f),
            requests_total: page.sum_any(SUCCESS, f),
            ttft: page.histogram_any(TTFT, f),
            e2e: page.histogram_any(E2E, f),
            itl: page.histogram_any(ITL, f),
            model_names: models,
            engines,
        }
    }

    pub fn parse(text: &str, model: Option<&str>, at: Instant) -> Scrape {
        Self::from_page(&Page::parse(text), model, at)
    }

    /// True when the page looks like vLLM's at all.
    pub fn is_vllm(&self) -> bool {
        self.running.is_some() || self.generation_tokens_total.is_some()
    }
}

/// What the console and `routes --json` show for a vLLM target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VllmMetrics {
    pub num_requests_running: Option<f64>,
    pub num_requests_waiting: Option<f64>,
    /// 0..1.
    pub kv_cache_usage: Option<f64>,
    pub prompt_tokens_total: Option<f64>,
    pub generation_tokens_total: Option<f64>,
    pub num_preemptions_total: Option<f64>,
    /// Tokens per second over the last window (counter deltas).
    pub prompt_tokens_per_s: Option<f64>,
    pub generation_tokens_per_s: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub preemptions_per_s: Option<f64>,
    /// Hits / queries over the last window (in tokens), else since start.
    pub prefix_cache_hit_rate: Option<f64>,
    /// Over the last window; `None` when no request finished in it.
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p90_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p90_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    pub itl_p50_ms: Option<f64>,
    /// Seconds the window covers (0 for the first scrape).
    pub window_s: f64,
    pub engines: usize,
    pub model_names: Vec<String>,
}

fn rate(cur: Option<f64>, prev: Option<f64>, dt: f64) -> Option<f64> {
    let (c, p) = (cur?, prev?);
    if dt <= 0.0 {
        return None;
    }
    // A counter that went down restarted with the server: count from zero.
    Some(if c >= p { (c - p) / dt } else { c / dt })
}

fn ms(h: &Option<Histogram>, q: f64) -> Option<f64> {
    h.as_ref()?.quantile(q).map(|s| s * 1000.0)
}

/// Current values from `cur`; rates and window percentiles from the change since `prev`.
pub fn derive(prev: Option<&Scrape>, cur: &Scrape) -> VllmMetrics {
    let dt = prev.map_or(0.0, |p| cur.at.duration_since(p.at).as_secs_f64());
    let window = |h: &Option<Histogram>, ph: Option<&Option<Histogram>>| -> Option<Histogram> {
        match (h, ph) {
            (Some(c), Some(Some(p))) => Some(c.since(p)),
            _ => None,
        }
    };
    let ttft = window(&cur.ttft, prev.map(|p| &p.ttft));
    let e2e = window(&cur.e2e, prev.map(|p| &p.e2e));
    let itl = window(&cur.itl, prev.map(|p| &p.itl));
    let hit_rate = match (prev, cur.prefix_queries_total, cur.prefix_hits_total) {
        (Some(p), Some(q), Some(h)) => match (p.prefix_queries_total, p.prefix_hits_total) {
            (Some(pq), Some(ph)) if q > pq => Some((h - ph) / (q - pq)),
            _ => (q > 0.0).then(|| h / q),
        },
        (None, Some(q), Some(h)) if q > 0.0 => Some(h / q),
        _ => None,
    };
    VllmMetrics {
        num_requests_running: cur.running,
        num_requests_waiting: cur.waiting,
        kv_cache_usage: cur.kv_cache_usage,
        prompt_tokens_total: cur.prompt_tokens_total,
        generation_tokens_total: cur.generation_tokens_total,
        num_preemptions_total: cur.preemptions_total,
        prompt_tokens_per_s: rate(
            cur.prompt_tokens_total,
            prev.and_then(|p| p.prompt_tokens_total),
            dt,
        ),
        generation_tokens_per_s: rate(
            cur.generation_tokens_total,
            prev.and_then(|p| p.generation_tokens_total),
            dt,
        ),
        requests_per_s: rate(cur.requests_total, prev.and_then(|p| p.requests_total), dt),
        preemptions_per_s: rate(
            cur.preemptions_total,
            prev.and_then(|p| p.preemptions_total),
            dt,
        ),
        prefix_cache_hit_rate: hit_rate,
        ttft_p50_ms: ms(&ttft, 0.5),
        ttft_p90_ms: ms(&ttft, 0.9),
        ttft_p99_ms: ms(&ttft, 0.99),
        e2e_p50_ms: ms(&e2e, 0.5),
        e2e_p90_ms: ms(&e2e, 0.9),
        e2e_p99_ms: ms(&e2e, 0.99),
        itl_p50_ms: ms(&itl, 0.5),
        window_s: dt,
        engines: cur.engines,
        model_names: cur.model_names.clone(),
    }
}

impl VllmMetrics {
    /// vllm#39863: the engine can hang while the HTTP side keeps answering. Requests wait,
    /// nothing runs and no token is produced.
    pub fn looks_stalled(&self) -> bool {
        self.num_requests_waiting.unwrap_or(0.0) > 0.0
            && self.num_requests_running.unwrap_or(0.0) == 0.0
            && self.generation_tokens_per_s == Some(0.0)
            && self.window_s > 0.0
    }
}
