//! One saved run, ours or `vllm bench serve`'s, read for the report: the figures by their
//! saved names, the per-second series, the per-request arrays when they were saved.
use serde_json::{Map, Value};

/// A latency's distribution, as finely as the file allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Log-spaced bins: (upper bound ms, count); each bin is `ratio` times wider than the last.
    Bins { bins: Vec<(f64, u64)>, ratio: f64 },
    /// Only percentiles were saved (vLLM without `--save-detailed`): (quantile, ms).
    Ladder(Vec<(f64, f64)>),
}

impl Dist {
    /// Cumulative percent of requests at or below each value.
    pub fn cdf(&self) -> Vec<(f64, Option<f64>)> {
        match self {
            Dist::Bins { bins, ratio } => {
                let total: u64 = bins.iter().map(|b| b.1).sum::<u64>().max(1);
                let mut seen = 0;
                let mut pts = vec![(bins.first().map_or(0.0, |b| b.0 / ratio), Some(0.0))];
                for (upper, c) in bins {
                    seen += c;
                    pts.push((*upper, Some(seen as f64 / total as f64 * 100.0)));
                }
                pts
            }
            Dist::Ladder(l) => l.iter().map(|(q, v)| (*v, Some(q * 100.0))).collect(),
        }
    }
}

/// One request of a detailed run, in seconds from the run's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub index: usize,
    pub start: f64,
    pub ttft: Option<f64>,
    pub e2el: Option<f64>,
    pub queue: Option<f64>,
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// What the page calls it: its label, else the file's name.
    pub name: String,
    pub o: Map<String, Value>,
}

const BINS: usize = 60;

impl Run {
    pub fn new(name: String, o: Map<String, Value>) -> Self {
        Run { name, o }
    }

    pub fn f(&self, k: &str) -> Option<f64> {
        self.o.get(k).and_then(Value::as_f64)
    }

    pub fn s(&self, k: &str) -> String {
        match self.o.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }

    /// Ours carries a `client` block and a `series`; `vllm bench serve`'s does not.
    pub fn is_ours(&self) -> bool {
        self.o.contains_key("series") || self.o.contains_key("client")
    }

    /// `metric` in ttft/tpot/itl/e2el, `which` in mean/median/p90/p95/p99/max/std.
    pub fn stat(&self, metric: &str, which: &str) -> Option<f64> {
        self.f(&format!("{which}_{metric}_ms"))
    }

    /// A value by its JSON pointer (`/config/load/concurrency`).
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        let (first, rest) = pointer
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((pointer.trim_start_matches('/'), ""));
        let v = self.o.get(first)?;
        if rest.is_empty() {
            Some(v)
        } else {
            v.pointer(&format!("/{rest}"))
        }
    }

    /// The concurrency the client held: its closed-loop concurrency or its cap, else the most
    /// requests it had in flight.
    pub fn concurrency(&self) -> Option<f64> {
        self.at("/config/load/concurrency")
            .and_then(Value::as_f64)
            .or_else(|| self.f("max_concurrency"))
            .or_else(|| self.f("max_concurrent_requests"))
            .filter(|c| *c > 0.0)
    }

    /// The offered request rate; `None` for "inf".
    pub fn rate(&self) -> Option<f64> {
        self.f("request_rate")
    }

    /// A per-second series by its saved name.
    pub fn series(&self, k: &str) -> Option<Vec<Option<f64>>> {
        let v = self.o.get("series")?.get(k)?.as_array()?;
        Some(v.iter().map(Value::as_f64).collect())
    }

    /// The server's scrapes (vLLM's `/metrics`), as (seconds, value) for one field.
    pub fn server(&self, k: &str) -> Vec<(f64, Option<f64>)> {
        let Some(samples) = self
            .o
            .get("server_metrics")
            .and_then(|m| m.get("samples"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        samples
            .iter()
            .filter_map(|s| Some((s.get("t_s")?.as_f64()?, s.get(k).and_then(Value::as_f64))))
            .collect()
    }

    fn array(&self, k: &str) -> Option<&Vec<Value>> {
        self.o.get(k).and_then(Value::as_array)
    }

    /// The per-request values of a latency in ms, when per-request arrays were saved.
    pub fn values(&self, metric: &str) -> Option<Vec<f64>> {
        let ms = |k: &str| -> Option<Vec<Option<f64>>> {
            Some(
                self.array(k)?
                    .iter()
                    .map(|v| v.as_f64().map(|s| s * 1000.0))
                    .collect(),
            )
        };
        let v: Vec<f64> = match metric {
            "ttft" => ms("ttfts")?.into_iter().flatten().collect(),
            "e2el" => ms("latencies")?.into_iter().flatten().collect(),
            "itl" => self
                .array("itls")?
                .iter()
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(Value::as_f64)
                .map(|s| s * 1000.0)
                .collect(),
            "tpot" => {
                let (t, e) = (ms("ttfts")?, ms("latencies")?);
                let outs = self.array("output_lens")?;
                t.iter()
                    .zip(&e)
                    .zip(outs)
                    .filter_map(|((t, e), n)| {
                        let n = n.as_f64()?;
                        let (e, t) = ((*e)?, (*t)?);
                        (n > 1.0).then(|| (e - t) / (n - 1.0))
                    })
                    .collect()
            }
            _ => return None,
        };
        let v: Vec<f64> = v
            .into_iter()
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        (!v.is_empty()).then_some(v)
    }

    pub fn dist(&self, metric: &str) -> Option<Dist> {
        if let Some(v) = self.values(metric) {
            return Some(log_bins(&v, BINS));
        }
        if let Some(b) = self
            .o
            .get("distributions")
            .and_then(|d| d.get(metric))
            .and_then(Value::as_array)
        {
            let bins: Vec<(f64, u64)> = b
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_u64()?)))
                .collect();
            if bins.iter().any(|b| b.1 > 0) {
                let ratio = match bins.as_slice() {
                    [a, b, ..] if a.0 > 0.0 => b.0 / a.0,
                    _ => 2.0,
                };
                return Some(Dist::Bins { bins, ratio });
            }
        }
        let ladder: Vec<(f64, f64)> = [
            (0.5, "median"),
            (0.9, "p90"),
            (0.95, "p95"),
            (0.99, "p99"),
            (1.0, "max"),
        ]
        .into_iter()
        .filter_map(|(q, w)| self.stat(metric, w).filter(|v| *v > 0.0).map(|v| (q, v)))
        .collect();
        (!ladder.is_empty()).then_some(Dist::Ladder(ladder))
    }

    /// Every request of a detailed run that says when it started.
    pub fn requests(&self) -> Option<Vec<Request>> {
        let starts = self.array("start_times")?;
        let at = |k: &str, i: usize| self.array(k).and_then(|a| a.get(i)).and_then(Value::as_f64);
        let errors = self.array("errors");
        // vLLM saves its clock's readings (seconds since boot); ours, seconds since the start.
        let first = starts
            .iter()
            .filter_map(Value::as_f64)
            .fold(f64::INFINITY, f64::min);
        let shift = if first > self.f("duration").unwrap_or(0.0) + 1.0 {
            first
        } else {
            0.0
        };
        Some(
            starts
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    Some(Request {
                        index: i,
                        start: s.as_f64()? - shift,
                        ttft: at("ttfts", i),
                        e2el: at("latencies", i),
                        queue: at("queue_times", i),
                        failed: errors
                            .and_then(|e| e.get(i))
                            .and_then(Value::as_str)
                            .is_some_and(|e| !e.is_empty()),
                    })
                })
                .collect(),
        )
    }
}

/// Log-spaced bins over the values (ms).
pub fn log_bins(v: &[f64], n: usize) -> Dist {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3);
    let hi = v.iter().copied().fold(0.0, f64::max).max(lo * 1.01);
    let n = n.max(1);
    let step = (hi.ln() - lo.ln()) / n as f64;
    let mut counts = vec![0u64; n];
    for x in v {
        let i = ((x.max(lo).ln() - lo.ln()) / step) as usize;
        counts[i.min(n - 1)] += 1;
    }
    let bins = counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| ((lo.ln() + step * (i + 1) as f64).exp(), c))
        .collect();
    Dist::Bins {
        bins,
        ratio: step.exp(),
    }
}
