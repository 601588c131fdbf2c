//! Aggregation of finished requests: latency distributions (`dist.rs`), exact sums for
//! means and deviations, goodput, error classes, and a per-second series for charts. Each
//! request is added once, when it ends; nothing here runs per chunk.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request as its task saw it. Times are seconds from the start of the measured run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub start_s: f64,
    pub end_s: f64,
    /// Time to the response headers (the request's path and any queue before the server
    /// answered; not part of vLLM's figures).
    pub headers_s: Option<f64>,
    /// Time to the first event with non-empty `choices`.
    pub ttft_s: Option<f64>,
    /// Time to the last such event.
    pub e2el_s: Option<f64>,
    /// Gaps between consecutive such events, in microseconds.
    pub gaps_us: Vec<u32>,
    /// (second of the run, content events in it), run-length coded.
    pub chunk_seconds: Vec<(u32, u32)>,
    pub content_events: u32,
    pub events: u32,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub prompt_estimate: u32,
    /// (class, message) when the request failed.
    pub error: Option<(String, String)>,
    /// The answer's text, kept only when the next turn of a conversation needs it.
    pub answer: Option<String>,
    /// Seconds it waited in the client for a `--max-concurrency` slot before it was sent.
    pub queue_s: Option<f64>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Output tokens: the server's count, else one per content event (and says which).
    pub fn output_tokens(&self) -> (u64, bool) {
        match self.completion_tokens {
            Some(n) => (n, true),
            None => (u64::from(self.content_events), false),
        }
    }

    /// vLLM's TPOT: (E2EL − TTFT) / (output tokens − 1), for requests with more than one token.
    pub fn tpot_s(&self) -> Option<f64> {
        let (n, _) = self.output_tokens();
        match (self.ttft_s, self.e2el_s) {
            (Some(t), Some(e)) if n > 1 => Some((e - t) / (n - 1) as f64),
            _ => None,
        }
    }
}

/// Service-level objectives for goodput, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
}

impl Slo {
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2el_ms.is_some()
    }

    /// `ttft:500,tpot:50` (vLLM's keys; commas or spaces).
    pub fn parse(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split([',', ' ']).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once(':')
                .ok_or_else(|| format!("`{part}`: write KEY:MILLISECONDS, e.g. ttft:500"))?;
            let ms: f64 = v.parse().ok().filter(|x: &f64| *x > 0.0).ok_or_else(|| {
                format!("`{part}`: `{v}` is not a positive number of milliseconds")
            })?;
            match k {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2el" => slo.e2el_ms = Some(ms),
                _ => return Err(format!("`{k}` is not one of ttft, tpot, e2el")),
            }
        }
        Ok(slo)
    }

    /// DistServe's rule, as vLLM applies it: every given limit holds; a request with one
    /// token has a TPOT of 0.
    pub fn met_by(&self, o: &Outcome) -> bool {
        let ms = |s: Option<f64>| s.map(|x| x * 1000.0);
        let ok =
            |limit: Option<f64>, v: Option<f64>| limit.is_none_or(|l| v.is_some_and(|v| v <= l));
        ok(self.ttft_ms, ms(o.ttft_s))
            && ok(self.tpot_ms, Some(ms(o.tpot_s()).unwrap_or(0.0)))
            && ok(self.e2el_ms, ms(o.e2el_s))
    }
}

pub use super::dist::{Dist, LogHist, Stats};

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Requests sent in this second (the rate achieved).
    pub sent: u32,
    /// Requests that ended well in this second.
    pub completed: u32,
    pub failed: u32,
    /// Output tokens, spread over the content events that carried them.
    pub output_tokens: f64,
    /// Mean requests in flight (time-weighted).
    pub concurrency: f64,
    #[serde(skip)]
    pub ttft: LogHist,
    #[serde(skip)]
    pub e2el: LogHist,
    /// Every gap between chunks of the requests that ended in this second.
    #[serde(skip)]
    pub itl: LogHist,
}

#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    /// The first few error messages, for the report.
    pub error_samples: Vec<String>,
    pub headers: Dist,
    /// Response headers to the first token: the server's queue and prefill, without the
    /// request's path to it.
    pub after_headers: Dist,
    pub ttft: Dist,
    pub tpot: Dist,
    pub itl: Dist,
    pub e2el: Dist,
    pub input_tokens: u64,
    /// Σ prompt tokens asked for (the prompts' own lengths) over completed requests.
    pub asked_input_tokens: u64,
    pub output_tokens: u64,
    /// Requests whose output count came from events, not the server's `usage`.
    pub estimated_outputs: u64,
    pub estimated_inputs: u64,
    pub content_events: u64,
    pub good: u64,
    pub slo: Slo,
    pub seconds: Vec<Second>,
    /// When the last request ended, seconds from the start.
    pub last_end_s: f64,
    /// Per-request detail, kept only when asked (`--save-detailed`).
    pub detail: Option<Vec<Outcome>>,
    /// Keep only the last minutes per second (a soak run: a run of hours holds its memory
    /// flat; its windows cover the whole run).
    pub bounded_seconds: bool,
    /// Seconds before `seconds[0]` (dropped by `bounded_seconds`).
    pub seconds_base: usize,
    /// Where rows before `seconds_base` are written (and dropped).
    pub scratch: Second,
}

/// Per-second rows a soak run keeps (then drops the older half).
const SOAK_SECONDS: usize = 1200;

impl Recorder {
    pub fn new(slo: Slo, detailed: bool) -> Self {
        Self {
            slo,
            detail: detailed.then(Vec::new),
            ..Self::default()
        }
    }

    /// A request was sent `at_s` seconds into the run.
    pub fn note_sent(&mut self, at_s: f64) {
        self.sent += 1;
        self.second(at_s.max(0.0) as usize).sent += 1;
    }

    fn second(&mut self, i: usize) -> &mut Second {
        if i < self.seconds_base {
            self.scratch = Second::default();
            return &mut self.scratch;
        }
        let abs = i;
        let mut i = i - self.seconds_base;
        if self.bounded_seconds && i >= SOAK_SECONDS {
            // Keep the last half: the rows from `abs - SOAK_SECONDS / 2` on.
            let drop = (i + 1 - SOAK_SECONDS / 2).min(self.seconds.len());
            self.seconds.drain(..drop);
            self.seconds_base += drop;
            i = abs - self.seconds_base;
        }
        if self.seconds.len() <= i {
            self.seconds.resize(i + 1, Second::default());
        }
        &mut self.seconds[i]
    }

    pub fn add(&mut self, o: Outcome) {
        self.last_end_s = self.last_end_s.max(o.end_s);
        // Time-weighted concurrency: this request's share of each second it spanned.
        let (a, b) = (o.start_s.max(0.0), o.end_s.max(o.start_s));
        let mut s = a.floor() as usize;
        while (s as f64) < b {
            let lo = a.max(s as f64);
            let hi = b.min(s as f64 + 1.0);
            self.second(s).concurrency += (hi - lo).max(0.0);
            s += 1;
        }
        let end_sec = o.end_s.max(0.0) as usize;
        match &o.error {
            Some((class, msg)) => {
                self.failed += 1;
                *self.errors.entry(class.clone()).or_default() += 1;
                if self.error_samples.len() < 10 {
                    self.error_samples.push(format!("{class}: {msg}"));
                }
                self.second(end_sec).failed += 1;
            }
            None => {
                self.completed += 1;
                let (out, from_usage) = o.output_tokens();
                if !from_usage {
                    self.estimated_outputs += 1;
                }
                self.output_tokens += out;
                self.asked_input_tokens += u64::from(o.prompt_estimate);
                match o.prompt_tokens {
                    Some(p) => self.input_tokens += p,
                    None => {
                        self.estimated_inputs += 1;
                        self.input_tokens += u64::from(o.prompt_estimate);
                    }
                }
                self.content_events += u64::from(o.content_events);
                if let Some(h) = o.headers_s {
                    self.headers.add_us(h * 1e6);
                    if let Some(t) = o.ttft_s {
                        self.after_headers.add_us((t - h).max(0.0) * 1e6);
                    }
                }
                if let Some(t) = o.ttft_s {
                    self.ttft.add_us(t * 1e6);
                    let sec = (o.start_s + t).max(0.0) as usize;
                    self.second(sec).ttft.add(t * 1000.0);
                }
                if let Some(t) = o.tpot_s() {
                    self.tpot.add_us(t * 1e6);
                }
                if let Some(e) = o.e2el_s {
                    self.e2el.add_us(e * 1e6);
                    self.second(end_sec).e2el.add(e * 1000.0);
                }
                for g in &o.gaps_us {
                    self.itl.add_us(f64::from(*g));
                }
                if !o.gaps_us.is_empty() {
                    let sec = self.second(end_sec);
                    for g in &o.gaps_us {
                        sec.itl.add(f64::from(*g) / 1000.0);
                    }
                }
                if o.content_events > 0 {
                    let per_event = out as f64 / f64::from(o.content_events);
                    for &(sec, n) in &o.chunk_seconds {
                        self.second(sec as usize).output_tokens += per_event * f64::from(n);
                    }
                }
                self.second(end_sec).completed += 1;
                if self.slo.is_set() && self.slo.met_by(&o) {
                    self.good += 1;
                }
            }
        }
        if let Some(d) = self.detail.as_mut() {
            d.push(o);
        }
    }

    /// The busiest second's output tokens.
    pub fn peak_output_tokens_per_s(&self) -> f64 {
        self.seconds
            .iter()
            .map(|s| s.output_tokens)
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_percentile_lies_above_the_maximum() {
        // Seen against the real vLLM: p99 1067.01 ms beside a max of 1066.35 ms, because the
        // histogram reports the top of a value's bucket.
        let mut d = Dist::default();
        for us in [1_066_350.0, 20_000.0, 30_000.0] {
            d.add_us(us);
        }
        let s = d.stats();
        assert_eq!(s.max, 1066.35);
        assert!(s.p99 <= s.max && s.p95 <= s.max && s.p90 <= s.max, "{s:?}");
        assert_eq!(s.p99, s.max);
    }

    fn ok(start: f64, ttft: f64, e2el: f64, tokens: u64) -> Outcome {
        Outcome {
            start_s: start,
            end_s: start + e2el,
            ttft_s: Some(ttft),
            e2el_s: Some(e2el),
            completion_tokens: Some(tokens),
            prompt_tokens: Some(10),
            content_events: tokens as u32,
            chunk_seconds: vec![(start as u32, tokens as u32)],
            ..Outcome::default()
        }
    }

    #[test]
    fn goodput_follows_distserve_and_vllm() {
        let slo = Slo::parse("ttft:100,tpot:20").unwrap();
        // TPOT = (0.5 - 0.05) / 24 = 18.75 ms: good.
        assert!(slo.met_by(&ok(0.0, 0.05, 0.5, 25)));
        // TTFT 150 ms breaks the first limit.
        assert!(!slo.met_by(&ok(0.0, 0.15, 0.5, 25)));
        // TPOT = (1.0 - 0.05) / 24 > 20 ms.
        assert!(!slo.met_by(&ok(0.0, 0.05, 1.0, 25)));
        // One token: TPOT counts as 0.
        assert!(slo.met_by(&ok(0.0, 0.05, 5.0, 1)));
        assert!(Slo::parse("ttft:x").is_err() && Slo::parse("speed:3").is_err());
        assert_eq!(
            Slo::parse("e2el:500 ttft:90").unwrap(),
            Slo {
                ttft_ms: Some(90.0),
                tpot_ms: None,
                e2el_ms: Some(500.0)
            }
        );
    }

    #[test]
    fn stats_are_exact_where_numpy_is_and_within_hdr_precision_elsewhere() {
        let mut d = Dist::default();
        for v in [10.0, 20.0, 30.0, 40.0] {
            d.add_us(v * 1000.0);
        }
        let s = d.stats();
        assert_eq!(s.count, 4);
        assert!((s.mean - 25.0).abs() < 1e-12);
        assert!(
            (s.std - 125f64.sqrt()).abs() < 1e-9,
            "population std: {}",
            s.std
        );
        assert!((s.median - 20.0).abs() / 20.0 < 0.001, "{}", s.median);
        assert_eq!(s.max, 40.0);
        assert!((s.p99 - 40.0).abs() / 40.0 < 0.001);
    }

    #[test]
    fn series_spread_tokens_and_concurrency_over_seconds() {
        let mut r = Recorder::new(Slo::default(), false);
        let mut o = ok(0.5, 0.1, 1.0, 30);
        o.chunk_seconds = vec![(0, 10), (1, 20)];
        r.add(o);
        assert_eq!(r.seconds.len(), 2);
        assert!((r.seconds[0].output_tokens - 10.0).abs() < 1e-9);
        assert!((r.seconds[1].output_tokens - 20.0).abs() < 1e-9);
        assert!((r.seconds[0].concurrency - 0.5).abs() < 1e-9);
        assert!((r.seconds[1].concurrency - 0.5).abs() < 1e-9);
        assert_eq!(r.seconds[1].completed, 1);
        assert_eq!(r.peak_output_tokens_per_s(), 20.0);
    }

    #[test]
    fn log_hist_quantiles_land_in_the_right_bucket() {
        let mut h = LogHist::default();
        for _ in 0..99 {
            h.add(10.0);
        }
        h.add(1000.0);
        let p50 = h.quantile(0.5).unwrap();
        assert!(p50 > 10.0 / 1.35 && p50 <= 10.0 * 1.35, "{p50}");
        let p999 = h.quantile(0.999).unwrap();
        assert!(p999 > 1000.0 / 1.35 && p999 <= 1000.0 * 1.35, "{p999}");
    }

    #[test]
    fn a_soak_recorder_keeps_its_last_minutes_per_second() {
        let mut r = Recorder {
            bounded_seconds: true,
            ..Recorder::new(Slo::default(), false)
        };
        for s in 0..5000u32 {
            r.note_sent(s as f64);
            r.add(Outcome {
                start_s: s as f64,
                end_s: s as f64 + 0.5,
                ttft_s: Some(0.1),
                e2el_s: Some(0.5),
                completion_tokens: Some(4),
                content_events: 4,
                chunk_seconds: vec![(s, 4)],
                ..Outcome::default()
            });
        }
        assert!(r.seconds.len() <= SOAK_SECONDS, "{}", r.seconds.len());
        assert_eq!(r.seconds_base + r.seconds.len(), 5000);
        assert_eq!(r.seconds.last().unwrap().completed, 1);
        assert_eq!(r.completed, 5000, "the totals cover the whole run");
    }
}
