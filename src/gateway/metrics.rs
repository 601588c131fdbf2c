//! The gateway's `/metrics` in Prometheus' text format: requests, fallbacks, tokens,
//! cancellations, in flight and queued, TTFT, upstream time and our own overhead (the whole
//! request less the time spent waiting on upstream) as histograms, and each target's circuit.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Our own time is measured in microseconds.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/// A histogram as the gateway prints it: its labels, then `le`.
#[derive(Debug, Clone)]
struct Hist(crate::histogram::Buckets);

impl Hist {
    fn new(bounds: &'static [f64]) -> Self {
        Self(crate::histogram::Buckets::new(bounds))
    }

    fn observe(&mut self, v: f64) {
        self.0.observe(v)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let h = &self.0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, cum) in h.cumulative() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), h.count);
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, &'static str, u16), u64>,
    fallbacks: BTreeMap<(String, String, String), u64>,
    tokens: BTreeMap<(String, &'static str), u64>,
    cancels: BTreeMap<&'static str, u64>,
    refused: BTreeMap<&'static str, u64>,
    ttft: BTreeMap<String, Hist>,
    upstream: BTreeMap<String, Hist>,
    overhead: Option<Hist>,
    queue_wait: Option<Hist>,
}

/// What `/metrics` shows that the registry does not keep itself.
pub struct Gauges {
    pub in_flight: usize,
    pub queued: usize,
    pub max_in_flight: usize,
    /// (route, target, state: 0 closed, 1 half-open, 2 open).
    pub circuits: Vec<(String, String, u8)>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// One finished request, as the metrics count it.
pub struct Finished<'a> {
    pub route: &'a str,
    pub model: &'a str,
    pub dialect: &'static str,
    pub status: u16,
    pub ttft_s: Option<f64>,
    pub upstream_s: Option<f64>,
    pub overhead_s: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn finished(&self, f: &Finished<'_>) {
        let mut m = self.lock();
        *m.requests
            .entry((f.route.into(), f.model.into(), f.dialect, f.status))
            .or_default() += 1;
        if let Some(t) = f.ttft_s {
            m.ttft
                .entry(f.route.into())
                .or_insert_with(|| Hist::new(LATENCY_BUCKETS))
                .observe(t);
        }
        if let Some(t) = f.upstream_s {
            m.upstream
                .entry(f.route.into())
                .or_insert_with(|| Hist::new(LATENCY_BUCKETS))
                .observe(t);
        }
        if let Some(o) = f.overhead_s {
            m.overhead
                .get_or_insert_with(|| Hist::new(OVERHEAD_BUCKETS))
                .observe(o);
        }
        if f.prompt_tokens > 0 {
            *m.tokens.entry((f.route.into(), "prompt")).or_default() += f.prompt_tokens;
        }
        if f.completion_tokens > 0 {
            *m.tokens.entry((f.route.into(), "completion")).or_default() += f.completion_tokens;
        }
    }

    pub fn fallback(&self, from: &str, to: &str, reason: &str) {
        *self
            .lock()
            .fallbacks
            .entry((from.into(), to.into(), reason.into()))
            .or_default() += 1;
    }

    pub fn cancelled(&self, stage: &'static str) {
        *self.lock().cancels.entry(stage).or_default() += 1;
    }

    pub fn refused(&self, why: &'static str) {
        *self.lock().refused.entry(why).or_default() += 1;
    }

    pub fn queue_wait(&self, s: f64) {
        self.lock()
            .queue_wait
            .get_or_insert_with(|| Hist::new(LATENCY_BUCKETS))
            .observe(s);
    }

    pub fn render(&self, g: &Gauges) -> String {
        let m = self.lock();
        let mut o = String::with_capacity(4096);
        counters(&m, &mut o);
        gauges(g, &mut o);
        histograms(&m, &mut o);
        o
    }
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Requests, fallbacks, tokens, cancellations and refusals.
fn counters(m: &Inner, o: &mut String) {
    head(
        o,
        "anorag_gateway_requests_total",
        "counter",
        "Requests answered, by route, model asked, client dialect and HTTP status.",
    );
    for ((r, model, d, s), n) in &m.requests {
        let _ = writeln!(o, "anorag_gateway_requests_total{{route=\"{}\",model=\"{}\",dialect=\"{d}\",status=\"{s}\"}} {n}", esc(r), esc(model));
    }
    head(o, "anorag_gateway_fallbacks_total", "counter", "Requests served by another route than the one asked for, by from, to and the reason the first failed.");
    for ((f, t, why), n) in &m.fallbacks {
        let _ = writeln!(
            o,
            "anorag_gateway_fallbacks_total{{from=\"{}\",to=\"{}\",reason=\"{}\"}} {n}",
            esc(f),
            esc(t),
            esc(why)
        );
    }
    head(o, "anorag_gateway_tokens_total", "counter", "Tokens by the route that served them and kind (prompt, completion), as the server counted them.");
    for ((r, k), n) in &m.tokens {
        let _ = writeln!(
            o,
            "anorag_gateway_tokens_total{{route=\"{}\",kind=\"{k}\"}} {n}",
            esc(r)
        );
    }
    head(
        o,
        "anorag_gateway_client_cancellations_total",
        "counter",
        "Requests whose client went away before the answer ended, by the stage they were in.",
    );
    for (s, n) in &m.cancels {
        let _ = writeln!(
            o,
            "anorag_gateway_client_cancellations_total{{stage=\"{s}\"}} {n}"
        );
    }
    head(o, "anorag_gateway_refused_total", "counter", "Requests refused before routing, by reason (queue_full, queue_timeout, body_too_large, unauthorized, bad_request, unknown_model, client_timeout).");
    for (s, n) in &m.refused {
        let _ = writeln!(o, "anorag_gateway_refused_total{{reason=\"{s}\"}} {n}");
    }
}

/// In flight, queued, slots and each target's circuit, as they are now.
fn gauges(g: &Gauges, o: &mut String) {
    head(
        o,
        "anorag_gateway_in_flight",
        "gauge",
        "Requests being answered now.",
    );
    let _ = writeln!(o, "anorag_gateway_in_flight {}", g.in_flight);
    head(
        o,
        "anorag_gateway_queued",
        "gauge",
        "Requests waiting for a slot now.",
    );
    let _ = writeln!(o, "anorag_gateway_queued {}", g.queued);
    head(
        o,
        "anorag_gateway_max_in_flight",
        "gauge",
        "Slots (gateway.max_in_flight).",
    );
    let _ = writeln!(o, "anorag_gateway_max_in_flight {}", g.max_in_flight);
    head(
        o,
        "anorag_gateway_circuit_state",
        "gauge",
        "Each target's circuit: 0 closed, 1 half-open, 2 open.",
    );
    for (r, t, s) in &g.circuits {
        let _ = writeln!(
            o,
            "anorag_gateway_circuit_state{{route=\"{}\",target=\"{}\"}} {s}",
            esc(r),
            esc(t)
        );
    }
}

/// TTFT, upstream time, our own overhead and queueing.
fn histograms(m: &Inner, o: &mut String) {
    head(
        o,
        "anorag_gateway_ttft_seconds",
        "histogram",
        "Time from the request's arrival to its first content, by the route that served it.",
    );
    for (r, h) in &m.ttft {
        h.render(
            o,
            "anorag_gateway_ttft_seconds",
            &format!("route=\"{}\"", esc(r)),
        );
    }
    head(o, "anorag_gateway_upstream_seconds", "histogram", "Time spent waiting on upstream servers per request (attempts and fallbacks included), by the route that served it.");
    for (r, h) in &m.upstream {
        h.render(
            o,
            "anorag_gateway_upstream_seconds",
            &format!("route=\"{}\"", esc(r)),
        );
    }
    head(o, "anorag_gateway_overhead_seconds", "histogram", "The gateway's own time per request: the whole request less queueing and the time spent waiting on upstream.");
    m.overhead
        .clone()
        .unwrap_or_else(|| Hist::new(OVERHEAD_BUCKETS))
        .render(o, "anorag_gateway_overhead_seconds", "");
    head(
        o,
        "anorag_gateway_queue_wait_seconds",
        "histogram",
        "Time requests waited for a slot.",
    );
    m.queue_wait
        .clone()
        .unwrap_or_else(|| Hist::new(LATENCY_BUCKETS))
        .render(o, "anorag_gateway_queue_wait_seconds", "");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        for t in [0.003, 0.02, 0.02] {
            m.finished(&Finished {
                route: "r\"1",
                model: "m",
                dialect: "openai",
                status: 200,
                ttft_s: Some(t),
                upstream_s: Some(t),
                overhead_s: Some(0.00003),
                prompt_tokens: 5,
                completion_tokens: 7,
            });
        }
        let text = m.render(&Gauges {
            in_flight: 1,
            queued: 0,
            max_in_flight: 4,
            circuits: vec![],
        });
        assert!(text.contains(r#"anorag_gateway_requests_total{route="r\"1",model="m",dialect="openai",status="200"} 3"#), "{text}");
        assert!(
            text.contains(r#"anorag_gateway_ttft_seconds_bucket{route="r\"1",le="0.005"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"anorag_gateway_ttft_seconds_bucket{route="r\"1",le="0.025"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"anorag_gateway_tokens_total{route="r\"1",kind="completion"} 21"#),
            "{text}"
        );
        assert!(
            text.contains("anorag_gateway_overhead_seconds_count 3"),
            "{text}"
        );
    }
}
