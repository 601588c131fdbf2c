//! One run's result. Its JSON uses `vllm bench serve`'s keys (so existing plotting scripts read
//! it) and adds ours: error classes, dispatch lag, client CPU, the client-bound verdict and
//! the per-second series.
use super::recorder::{Recorder, Slo, Stats};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Bins per latency histogram saved in a result.
const DISTRIBUTION_BINS: usize = 60;

/// The four latencies, in vLLM's order and naming.
pub const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

/// The figures of one turn position over all conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnStats {
    pub turn: u32,
    pub completed: u64,
    pub failed: u64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2el_p50_ms: Option<f64>,
    /// The server's mean prompt tokens at this turn (the history grows).
    pub mean_prompt_tokens: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Requests sent each second: the rate achieved.
    pub sent: Vec<u32>,
    pub completed: Vec<u32>,
    pub failed: Vec<u32>,
    pub output_tokens_per_s: Vec<f64>,
    pub concurrency: Vec<f64>,
    pub ttft_p50_ms: Vec<Option<f64>>,
    pub ttft_p99_ms: Vec<Option<f64>>,
    pub e2el_p50_ms: Vec<Option<f64>>,
    pub e2el_p99_ms: Vec<Option<f64>>,
    pub itl_p50_ms: Vec<Option<f64>>,
    pub itl_p99_ms: Vec<Option<f64>>,
}

impl Series {
    pub fn from_recorder(r: &Recorder) -> Series {
        let mut s = Series::default();
        for sec in &r.seconds {
            s.sent.push(sec.sent);
            s.completed.push(sec.completed);
            s.failed.push(sec.failed);
            s.output_tokens_per_s.push(sec.output_tokens);
            s.concurrency.push(sec.concurrency);
            s.ttft_p50_ms.push(sec.ttft.quantile(0.5));
            s.ttft_p99_ms.push(sec.ttft.quantile(0.99));
            s.e2el_p50_ms.push(sec.e2el.quantile(0.5));
            s.e2el_p99_ms.push(sec.e2el.quantile(0.99));
            s.itl_p50_ms.push(sec.itl.quantile(0.5));
            s.itl_p99_ms.push(sec.itl.quantile(0.99));
        }
        s
    }
}

/// The client's own health during the run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientHealth {
    /// Request sent to response headers, milliseconds.
    pub time_to_headers: Stats,
    /// Response headers to the first token, milliseconds.
    pub headers_to_first_token: Stats,
    /// Late dispatch (actual − scheduled, when a slot was free), milliseconds.
    pub dispatch_lag: Stats,
    /// Time spent waiting for a `--max-concurrency` slot, milliseconds.
    pub queue_time: Stats,
    pub cpu_s: f64,
    /// Of one core.
    pub cpu_pct: f64,
    pub cores: usize,
    pub bound: bool,
    pub warnings: Vec<String>,
    /// Which HTTP client streamed the answers (`lean`, `reqwest`).
    pub http: &'static str,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BenchResult {
    pub date: String,
    pub backend: String,
    pub label: String,
    pub model_id: String,
    pub base_url: String,
    pub num_prompts: u64,
    /// `None` is vLLM's "inf": every request at once, or a closed loop.
    pub request_rate: Option<f64>,
    pub burstiness: f64,
    pub max_concurrency: Option<u64>,
    pub duration: f64,
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    pub request_throughput: f64,
    pub request_goodput: Option<f64>,
    pub output_throughput: f64,
    pub total_token_throughput: f64,
    pub max_output_tokens_per_s: f64,
    pub max_concurrent_requests: u64,
    pub ttft: Stats,
    pub tpot: Stats,
    pub itl: Stats,
    pub e2el: Stats,
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
    pub achieved_request_rate: Option<f64>,
    pub total_content_events: u64,
    pub output_tokens_source: String,
    pub input_tokens_source: String,
    pub slo: Slo,
    pub client: ClientHealth,
    /// The server's view of the run (vLLM's `/metrics`), when it has one.
    pub server_metrics: Option<crate::bench::server_metrics::ServerMetrics>,
    /// A multi-turn run's figures per turn position.
    pub per_turn: Vec<TurnStats>,
    /// How the prompts' lengths were made, asked vs sent.
    pub prompt_tokens: Option<crate::bench::exact::PromptTokens>,
    pub series: Series,
    /// Each latency's histogram, log-spaced bins of (upper bound ms, count), for the report's
    /// distribution charts when no per-request record was saved.
    pub distributions: BTreeMap<&'static str, Vec<(f64, u64)>>,
    /// Everything else about how the run was set up (mode, workload, warmup...).
    pub config: Value,
    /// Per-request arrays (`--save-detailed`), as vLLM names them.
    pub detail: Option<Value>,
    /// A soak run's windows and verdict.
    pub soak: Option<crate::bench::soak::SoakResult>,
}

impl BenchResult {
    pub fn stats(&self, metric: &str) -> &Stats {
        match metric {
            "ttft" => &self.ttft,
            "tpot" => &self.tpot,
            "itl" => &self.itl,
            _ => &self.e2el,
        }
    }

    fn stats_mut(&mut self, metric: &str) -> &mut Stats {
        match metric {
            "ttft" => &mut self.ttft,
            "tpot" => &mut self.tpot,
            "itl" => &mut self.itl,
            _ => &mut self.e2el,
        }
    }

    /// Fills the figures from a finished run's recorder.
    pub fn fill_from(&mut self, r: &Recorder, duration: f64) {
        let d = duration.max(1e-9);
        self.duration = duration;
        self.sent = r.sent;
        self.completed = r.completed;
        self.failed = r.failed;
        self.total_input_tokens = r.input_tokens;
        self.total_output_tokens = r.output_tokens;
        self.request_throughput = r.completed as f64 / d;
        self.request_goodput = r.slo.is_set().then(|| r.good as f64 / d);
        self.output_throughput = r.output_tokens as f64 / d;
        self.total_token_throughput = (r.input_tokens + r.output_tokens) as f64 / d;
        self.max_output_tokens_per_s = r.peak_output_tokens_per_s();
        self.ttft = r.ttft.stats();
        self.tpot = r.tpot.stats();
        self.itl = r.itl.stats();
        self.e2el = r.e2el.stats();
        self.errors = r.errors.clone();
        self.error_samples = r.error_samples.clone();
        self.total_content_events = r.content_events;
        let source = |estimated: u64| match estimated {
            0 => "usage",
            n if n == r.completed => "estimated",
            _ => "mixed",
        };
        self.output_tokens_source = source(r.estimated_outputs).replace("estimated", "events");
        self.input_tokens_source = source(r.estimated_inputs).to_string();
        self.slo = r.slo;
        self.series = Series::from_recorder(r);
        self.distributions = [
            ("ttft", &r.ttft),
            ("tpot", &r.tpot),
            ("itl", &r.itl),
            ("e2el", &r.e2el),
        ]
        .into_iter()
        .map(|(m, d)| (m, d.bins(DISTRIBUTION_BINS)))
        .collect();
        self.detail = r.detail.as_ref().map(|d| {
            let secs = |v: Option<f64>| v.map_or(Value::Null, |x| json!(x));
            json!({
                "input_lens": d.iter().map(|o| o.prompt_tokens.unwrap_or(u64::from(o.prompt_estimate))).collect::<Vec<_>>(),
                "asked_input_lens": d.iter().map(|o| o.prompt_estimate).collect::<Vec<_>>(),
                "output_lens": d.iter().map(|o| o.output_tokens().0).collect::<Vec<_>>(),
                "ttfts": d.iter().map(|o| secs(o.ttft_s)).collect::<Vec<_>>(),
                "latencies": d.iter().map(|o| secs(o.e2el_s)).collect::<Vec<_>>(),
                "itls": d.iter().map(|o| o.gaps_us.iter().map(|g| f64::from(*g) / 1e6).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "start_times": d.iter().map(|o| o.start_s).collect::<Vec<_>>(),
                "queue_times": d.iter().map(|o| o.queue_s.unwrap_or(0.0)).collect::<Vec<_>>(),
                "errors": d.iter().map(|o| o.error.as_ref().map(|(c, m)| format!("{c}: {m}")).unwrap_or_default()).collect::<Vec<_>>(),
            })
        });
    }

    /// vLLM's flat object, plus our additions.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("date", json!(self.date));
        put("backend", json!(self.backend));
        put("label", json!(self.label));
        put("model_id", json!(self.model_id));
        put("base_url", json!(self.base_url));
        put("num_prompts", json!(self.num_prompts));
        put(
            "request_rate",
            self.request_rate.map_or(json!("inf"), |r| json!(r)),
        );
        put("burstiness", json!(self.burstiness));
        put("max_concurrency", json!(self.max_concurrency));
        put("duration", json!(self.duration));
        put("completed", json!(self.completed));
        put("failed", json!(self.failed));
        put("total_input_tokens", json!(self.total_input_tokens));
        put("total_output_tokens", json!(self.total_output_tokens));
        put("request_throughput", json!(self.request_throughput));
        put("request_goodput", json!(self.request_goodput));
        put("output_throughput", json!(self.output_throughput));
        put("total_token_throughput", json!(self.total_token_throughput));
        put(
            "max_output_tokens_per_s",
            json!(self.max_output_tokens_per_s),
        );
        put(
            "max_concurrent_requests",
            json!(self.max_concurrent_requests),
        );
        for metric in METRICS {
            let s = self.stats(metric);
            put(&format!("mean_{metric}_ms"), json!(s.mean));
            put(&format!("median_{metric}_ms"), json!(s.median));
            put(&format!("std_{metric}_ms"), json!(s.std));
            put(&format!("p90_{metric}_ms"), json!(s.p90));
            put(&format!("p95_{metric}_ms"), json!(s.p95));
            put(&format!("p99_{metric}_ms"), json!(s.p99));
            put(&format!("max_{metric}_ms"), json!(s.max));
        }
        put("sent", json!(self.sent));
        put("errors_by_class", json!(self.errors));
        put("error_samples", json!(self.error_samples));
        put("achieved_request_rate", json!(self.achieved_request_rate));
        put("total_content_events", json!(self.total_content_events));
        put("output_tokens_source", json!(self.output_tokens_source));
        put("input_tokens_source", json!(self.input_tokens_source));
        put("goodput_slo", json!(self.slo));
        if let Some(p) = &self.prompt_tokens {
            put("prompt_tokens", json!(p));
        }
        if let Some(m) = &self.server_metrics {
            put("server_metrics", json!(m));
        }
        if !self.per_turn.is_empty() {
            put("per_turn", json!(self.per_turn));
        }
        if let Some(s) = &self.soak {
            put("soak", json!(s));
        }
        let c = &self.client;
        put(
            "client",
            json!({
                "dispatch_lag_ms": {"p50": c.dispatch_lag.median, "p99": c.dispatch_lag.p99, "max": c.dispatch_lag.max, "mean": c.dispatch_lag.mean},
                "queue_time_ms": {"p50": c.queue_time.median, "p99": c.queue_time.p99, "max": c.queue_time.max, "mean": c.queue_time.mean},
                "time_to_headers_ms": {"p50": c.time_to_headers.median, "p99": c.time_to_headers.p99, "max": c.time_to_headers.max, "mean": c.time_to_headers.mean},
                "headers_to_first_token_ms": {"p50": c.headers_to_first_token.median, "p99": c.headers_to_first_token.p99, "max": c.headers_to_first_token.max, "mean": c.headers_to_first_token.mean},
                "cpu_s": c.cpu_s,
                "cpu_pct_of_one_core": c.cpu_pct,
                "cores": c.cores,
                "bound": c.bound,
                "warnings": c.warnings,
                "http_client": c.http,
            }),
        );
        let s = &self.series;
        put(
            "series",
            json!({
                "interval_s": 1,
                "sent": s.sent,
                "completed": s.completed,
                "failed": s.failed,
                "output_tokens_per_s": s.output_tokens_per_s,
                "concurrency": s.concurrency,
                "ttft_p50_ms": s.ttft_p50_ms,
                "ttft_p99_ms": s.ttft_p99_ms,
                "e2el_p50_ms": s.e2el_p50_ms,
                "e2el_p99_ms": s.e2el_p99_ms,
                "itl_p50_ms": s.itl_p50_ms,
                "itl_p99_ms": s.itl_p99_ms,
            }),
        );
        if !self.distributions.is_empty() {
            put("distributions", json!(self.distributions));
        }
        put("config", self.config.clone());
        if let Some(Value::Object(d)) = &self.detail {
            for (k, v) in d {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }

    /// Reads a saved result (ours, or `vllm bench serve`'s) for `--baseline`.
    pub fn from_json(v: &Value) -> Result<BenchResult, String> {
        let o = v.as_object().ok_or("a saved result is a JSON object")?;
        let f = |k: &str| o.get(k).and_then(Value::as_f64);
        let u = |k: &str| o.get(k).and_then(Value::as_u64);
        let s = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if f("duration").is_none() || u("completed").is_none() {
            return Err("not a benchmark result: `duration` and `completed` are missing".into());
        }
        let mut r = BenchResult {
            date: s("date"),
            backend: s("backend"),
            label: s("label"),
            model_id: s("model_id"),
            base_url: s("base_url"),
            num_prompts: u("num_prompts").unwrap_or(0),
            request_rate: f("request_rate"),
            burstiness: f("burstiness").unwrap_or(1.0),
            max_concurrency: u("max_concurrency"),
            duration: f("duration").unwrap_or(0.0),
            completed: u("completed").unwrap_or(0),
            failed: u("failed").unwrap_or(0),
            total_input_tokens: u("total_input_tokens").unwrap_or(0),
            total_output_tokens: u("total_output_tokens").unwrap_or(0),
            request_throughput: f("request_throughput").unwrap_or(0.0),
            request_goodput: f("request_goodput"),
            output_throughput: f("output_throughput").unwrap_or(0.0),
            total_token_throughput: f("total_token_throughput").unwrap_or(0.0),
            max_output_tokens_per_s: f("max_output_tokens_per_s").unwrap_or(0.0),
            max_concurrent_requests: u("max_concurrent_requests").unwrap_or(0),
            config: o.get("config").cloned().unwrap_or(Value::Null),
            // Ours has the server's view; a result without it (vLLM's) compares without.
            server_metrics: o
                .get("server_metrics")
                .and_then(|m| serde_json::from_value(m.clone()).ok()),
            ..BenchResult::default()
        };
        r.sent = u("sent").unwrap_or(r.completed + r.failed);
        for metric in METRICS {
            let g = |p: &str| f(&format!("{p}_{metric}_ms")).unwrap_or(0.0);
            *r.stats_mut(metric) = Stats {
                count: 0,
                mean: g("mean"),
                median: g("median"),
                std: g("std"),
                p90: g("p90"),
                p95: g("p95"),
                p99: g("p99"),
                max: g("max"),
            };
        }
        if let Some(Value::Object(e)) = o.get("errors_by_class") {
            r.errors = e
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect();
        }
        Ok(r)
    }
}

/// A sweep's results, one per step.
pub fn sweep_json(steps: &[BenchResult]) -> Value {
    json!({ "steps": steps.iter().map(BenchResult::to_json).collect::<Vec<_>>() })
}
