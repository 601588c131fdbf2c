//! The server's view of a load test, on the run's time axis: vLLM's `/metrics` scraped every
//! `--server-metrics-interval` while the run goes (running and waiting requests, KV-cache use,
//! preemptions, generation tokens/s, prefix-cache hits), and the server's own TTFT and E2E
//! percentiles over the run from its histograms (the difference at the end of the run minus
//! the start), beside the client's.
use crate::provider::body;
use crate::telemetry::prometheus::Histogram;
use crate::telemetry::vllm_metrics::Scrape;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One scrape, relative to the run's start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    pub t_s: f64,
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    /// 0..1.
    pub kv_cache_usage: Option<f64>,
    /// Preemptions since the run started.
    pub preemptions: Option<f64>,
    /// Since the scrape before.
    pub generation_tokens_per_s: Option<f64>,
    /// Hits / queries since the scrape before.
    pub prefix_cache_hit_rate: Option<f64>,
}

/// Per second of the run (the client's series' axis): the last reading of each second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSeries {
    pub running: Vec<Option<f64>>,
    pub waiting: Vec<Option<f64>>,
    /// Percent.
    pub kv_cache_pct: Vec<Option<f64>>,
    pub preemptions: Vec<Option<f64>>,
    pub generation_tokens_per_s: Vec<Option<f64>>,
    pub prefix_cache_hit_rate: Vec<Option<f64>>,
}

impl ServerSeries {
    /// Seconds `from..` of `samples`.
    pub fn from_samples(samples: &[ServerSample], from: usize) -> Self {
        let secs = samples.last().map_or(0, |s| s.t_s.max(0.0) as usize + 1);
        let mut out = ServerSeries::default();
        for sec in from..secs.max(from) {
            let last = samples
                .iter()
                .rev()
                .find(|s| s.t_s.max(0.0) as usize == sec);
            out.running.push(last.and_then(|s| s.running));
            out.waiting.push(last.and_then(|s| s.waiting));
            out.kv_cache_pct
                .push(last.and_then(|s| s.kv_cache_usage).map(|k| k * 100.0));
            out.preemptions.push(last.and_then(|s| s.preemptions));
            out.generation_tokens_per_s
                .push(last.and_then(|s| s.generation_tokens_per_s));
            out.prefix_cache_hit_rate
                .push(last.and_then(|s| s.prefix_cache_hit_rate));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// Percentiles from a histogram (interpolated within vLLM's buckets), in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistStats {
    pub count: f64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl HistStats {
    fn of(h: &Histogram) -> Self {
        let ms = |q: f64| h.quantile(q).map(|s| s * 1000.0);
        HistStats {
            count: h.count,
            mean: h.mean().map(|s| s * 1000.0),
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
        }
    }
}

/// The result's `server_metrics`; read back from a saved result for `--baseline`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerMetrics {
    pub url: String,
    pub interval_s: f64,
    pub samples: Vec<ServerSample>,
    /// The server's TTFT and E2E over the run (its histograms' change).
    pub ttft_ms: Option<HistStats>,
    pub e2e_ms: Option<HistStats>,
    pub preemptions: Option<f64>,
    pub prefix_cache_hit_rate: Option<f64>,
    pub generation_tokens: Option<f64>,
    pub prompt_tokens: Option<f64>,
    /// Why scrapes failed, if they did (the last reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ServerMetrics {
    /// The highest reading of one figure over the run's samples.
    pub fn peak(&self, get: fn(&ServerSample) -> Option<f64>) -> Option<f64> {
        self.samples
            .iter()
            .filter_map(get)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))
    }
}

#[derive(Default)]
struct State {
    first: Option<Scrape>,
    prev: Option<Scrape>,
    samples: Vec<ServerSample>,
    error: Option<String>,
}

/// Scraping in the background while a run goes.
pub struct ServerWatch {
    url: String,
    model: String,
    interval: Duration,
    start: Instant,
    http: reqwest::Client,
    state: Arc<Mutex<State>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn scrape(http: &reqwest::Client, url: &str, model: &str) -> Result<Scrape, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let bytes = body::read_capped(resp, body::MAX_PAGE_BYTES)
        .await
        .map_err(|e| format!("GET {url}: {}", e.message))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {}", status.as_u16()));
    }
    let s = Scrape::parse(
        &String::from_utf8_lossy(&bytes),
        Some(model),
        Instant::now(),
    );
    if !s.is_vllm() {
        return Err(format!("GET {url}: not vLLM's metrics"));
    }
    Ok(s)
}

fn sample(first: &Scrape, prev: &Scrape, cur: &Scrape, start: Instant) -> ServerSample {
    let dt = cur.at.duration_since(prev.at).as_secs_f64();
    let diff = |c: Option<f64>, p: Option<f64>| match (c, p) {
        (Some(c), Some(p)) => Some((c - p).max(0.0)),
        _ => None,
    };
    ServerSample {
        t_s: cur.at.saturating_duration_since(start).as_secs_f64(),
        running: cur.running,
        waiting: cur.waiting,
        kv_cache_usage: cur.kv_cache_usage,
        preemptions: diff(cur.preemptions_total, first.preemptions_total),
        generation_tokens_per_s: diff(cur.generation_tokens_total, prev.generation_tokens_total)
            .filter(|_| dt > 0.0)
            .map(|d| d / dt),
        prefix_cache_hit_rate: match (
            diff(cur.prefix_hits_total, prev.prefix_hits_total),
            diff(cur.prefix_queries_total, prev.prefix_queries_total),
        ) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q),
            _ => None,
        },
    }
}

/// The baseline scrape, taken before the run starts.
pub struct Armed {
    url: String,
    model: String,
    http: reqwest::Client,
    first: Scrape,
}

impl Armed {
    /// Takes the baseline scrape of the server behind `base_url`; `Err` (with the reason)
    /// when it has no vLLM metrics.
    pub async fn new(base_url: &str, model: &str) -> Result<Self, String> {
        let root = base_url.trim_end_matches('/').trim_end_matches("/v1");
        let url = format!("{root}/metrics");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let first = scrape(&http, &url, model).await?;
        Ok(Self {
            url,
            model: model.to_string(),
            http,
            first,
        })
    }

    /// Scrapes every `interval` from now on; `start` is the run's start.
    pub fn begin(self, interval: Duration, start: Instant) -> ServerWatch {
        let state = Arc::new(Mutex::new(State {
            first: Some(self.first.clone()),
            prev: Some(self.first),
            ..State::default()
        }));
        let (stop, mut stopped) = watch::channel(false);
        let (h, u, m, st) = (
            self.http.clone(),
            self.url.clone(),
            self.model.clone(),
            state.clone(),
        );
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                let got = scrape(&h, &u, &m).await;
                let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
                match got {
                    Ok(cur) => {
                        if let (Some(f), Some(p)) = (&s.first, &s.prev) {
                            let smp = sample(f, p, &cur, start);
                            s.samples.push(smp);
                        }
                        s.prev = Some(cur);
                    }
                    Err(e) => s.error = Some(e),
                }
            }
        });
        ServerWatch {
            url: self.url,
            model: self.model,
            interval,
            start,
            http: self.http,
            state,
            stop,
            task,
        }
    }
}

impl ServerWatch {
    /// Seconds `from..` so far, for the live view.
    pub fn series(&self, from: usize) -> ServerSeries {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        ServerSeries::from_samples(&s.samples, from)
    }

    /// Stops, takes a last scrape, and sums the run up.
    pub async fn finish(self) -> ServerMetrics {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        // The summary rests on this one scrape, so a busy server gets three chances at it
        // (a live scrape that misses is only a gap in the series).
        let mut last = scrape(&self.http, &self.url, &self.model).await;
        for _ in 1..3 {
            if last.is_ok() {
                break;
            }
            last = scrape(&self.http, &self.url, &self.model).await;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Ok(cur), Some(f), Some(p)) = (&last, &s.first, &s.prev) {
            let smp = sample(f, p, cur, self.start);
            s.samples.push(smp);
        }
        let mut out = ServerMetrics {
            url: self.url.clone(),
            interval_s: self.interval.as_secs_f64(),
            samples: std::mem::take(&mut s.samples),
            error: s.error.clone().or(last.as_ref().err().cloned()),
            ..ServerMetrics::default()
        };
        if let (Ok(end), Some(first)) = (&last, &s.first) {
            let hist = |e: &Option<Histogram>, f: &Option<Histogram>| match (e, f) {
                (Some(e), Some(f)) => Some(HistStats::of(&e.since(f))),
                _ => None,
            };
            let diff = |e: Option<f64>, f: Option<f64>| Some((e? - f?).max(0.0));
            out.ttft_ms = hist(&end.ttft, &first.ttft);
            out.e2e_ms = hist(&end.e2e, &first.e2e);
            out.preemptions = diff(end.preemptions_total, first.preemptions_total);
            out.generation_tokens =
                diff(end.generation_tokens_total, first.generation_tokens_total);
            out.prompt_tokens = diff(end.prompt_tokens_total, first.prompt_tokens_total);
            out.prefix_cache_hit_rate = match (
                diff(end.prefix_hits_total, first.prefix_hits_total),
                diff(end.prefix_queries_total, first.prefix_queries_total),
            ) {
                (Some(h), Some(q)) if q > 0.0 => Some(h / q),
                _ => None,
            };
        }
        out
    }
}
