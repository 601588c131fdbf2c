//! vLLM's `/metrics` as the simulator keeps it: the same names, labels and layout, with
//! counters and gauges that follow the traffic actually served.
use std::fmt::Write;

const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

type Histogram = crate::histogram::Buckets;

#[derive(Debug, Clone)]
pub struct VllmMetrics {
    pub model: String,
    created: f64,
    pub running: u64,
    pub waiting: u64,
    /// KV blocks a running request is assumed to hold, for a plausible usage gauge.
    pub kv_capacity_tokens: u64,
    pub kv_tokens_in_use: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub success_stop: u64,
    pub success_length: u64,
    pub success_abort: u64,
    pub success_error: u64,
    pub preemptions: u64,
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
}

impl VllmMetrics {
    pub fn new(model: &str, kv_capacity_tokens: u64) -> Self {
        let created = crate::time::unix_now();
        Self {
            model: model.to_string(),
            created,
            running: 0,
            waiting: 0,
            kv_capacity_tokens: kv_capacity_tokens.max(1),
            kv_tokens_in_use: 0,
            prompt_tokens: 0,
            generation_tokens: 0,
            success_stop: 0,
            success_length: 0,
            success_abort: 0,
            success_error: 0,
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
        }
    }

    pub fn observe_ttft(&mut self, s: f64) {
        self.ttft.observe(s)
    }
    pub fn observe_itl(&mut self, s: f64) {
        self.itl.observe(s)
    }
    pub fn observe_e2e(&mut self, s: f64) {
        self.e2e.observe(s)
    }

    pub fn render(&self) -> String {
        let mut o = String::with_capacity(8 * 1024);
        let l = format!("engine=\"0\",model_name=\"{}\"", self.model);
        let gauge = |o: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{l}}} {}",
                num(v)
            );
        };
        let counter = |o: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                o,
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{{{l}}} {}\n# HELP {name}_created {help}\n# TYPE {name}_created gauge\n{name}_created{{{l}}} {}",
                num(v),
                num(self.created)
            );
        };
        gauge(
            &mut o,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            self.running as f64,
        );
        gauge(
            &mut o,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            self.waiting as f64,
        );
        let kv = (self.kv_tokens_in_use as f64 / self.kv_capacity_tokens as f64).min(1.0);
        gauge(
            &mut o,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            kv,
        );
        counter(
            &mut o,
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            self.prefix_queries as f64,
        );
        counter(
            &mut o,
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            self.prefix_hits as f64,
        );
        counter(
            &mut o,
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            self.preemptions as f64,
        );
        counter(
            &mut o,
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            self.prompt_tokens as f64,
        );
        counter(
            &mut o,
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            self.generation_tokens as f64,
        );
        let _ = writeln!(o, "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter");
        for (reason, v) in [
            ("stop", self.success_stop),
            ("length", self.success_length),
            ("abort", self.success_abort),
            ("error", self.success_error),
        ] {
            let _ = writeln!(
                o,
                "vllm:request_success_total{{engine=\"0\",finished_reason=\"{reason}\",model_name=\"{}\"}} {}",
                self.model,
                num(v as f64)
            );
        }
        hist(
            &mut o,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &self.ttft,
            &self.model,
        );
        hist(
            &mut o,
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &self.itl,
            &self.model,
        );
        hist(
            &mut o,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            &self.e2e,
            &self.model,
        );
        o
    }
}

fn hist(o: &mut String, name: &str, help: &str, h: &Histogram, model: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (b, c) in h.cumulative() {
        let _ = writeln!(
            o,
            "{name}_bucket{{engine=\"0\",le=\"{}\",model_name=\"{model}\"}} {}",
            num(b),
            num(c as f64)
        );
    }
    let _ = writeln!(
        o,
        "{name}_bucket{{engine=\"0\",le=\"+Inf\",model_name=\"{model}\"}} {}\n{name}_count{{engine=\"0\",model_name=\"{model}\"}} {}\n{name}_sum{{engine=\"0\",model_name=\"{model}\"}} {}",
        num(h.count as f64),
        num(h.count as f64),
        h.sum
    );
}

/// Python's float repr for the values we print: `3.0`, `0.25`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
