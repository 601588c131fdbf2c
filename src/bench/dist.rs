//! Latency distributions: a run's (hdrhistogram, exact mean and deviation), and a tiny
//! fixed one for each second's percentiles.
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Summary of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub median: f64,
    /// Population standard deviation (numpy's default, as vLLM reports it).
    pub std: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// A latency distribution: hdrhistogram for percentiles (1 µs to 1 h, 3 significant digits),
/// exact sums for mean and deviation.
#[derive(Debug, Clone)]
pub struct Dist {
    h: Histogram<u64>,
    n: u64,
    sum: f64,
    sumsq: f64,
    max: f64,
}

impl Default for Dist {
    fn default() -> Self {
        Self {
            h: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            n: 0,
            sum: 0.0,
            sumsq: 0.0,
            max: 0.0,
        }
    }
}

impl Dist {
    /// Adds one value in microseconds.
    pub fn add_us(&mut self, us: f64) {
        let us = us.max(0.0);
        self.h.saturating_record(us.round().max(1.0) as u64);
        let ms = us / 1000.0;
        self.n += 1;
        self.sum += ms;
        self.sumsq += ms * ms;
        self.max = self.max.max(ms);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Percentile in milliseconds (q in 0..=1).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        // The histogram answers with its bucket's highest equivalent value, which can lie
        // above the largest value recorded: a percentile is never above the maximum.
        (self.h.value_at_quantile(q) as f64 / 1000.0).min(self.max)
    }

    pub fn stats(&self) -> Stats {
        if self.n == 0 {
            return Stats::default();
        }
        let mean = self.sum / self.n as f64;
        let var = (self.sumsq / self.n as f64 - mean * mean).max(0.0);
        Stats {
            count: self.n,
            mean,
            median: self.quantile_ms(0.5),
            std: var.sqrt(),
            p90: self.quantile_ms(0.9),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
            max: self.max,
        }
    }

    /// Bins for a latency histogram chart: (upper bound ms, count), log-spaced over the data.
    pub fn bins(&self, n: usize) -> Vec<(f64, u64)> {
        if self.n == 0 || n == 0 {
            return Vec::new();
        }
        // No more bins than recorded value buckets: a narrow spread at the histogram's
        // resolution would otherwise leave every other bin empty.
        let n = n.min(self.h.iter_recorded().count());
        let lo = (self.h.min().max(1) as f64).ln();
        let hi = (self.h.max().max(2) as f64).ln();
        let step = ((hi - lo) / n as f64).max(1e-9);
        let mut bins = vec![0u64; n];
        for v in self.h.iter_recorded() {
            let x = (v.value_iterated_to().max(1) as f64).ln();
            let i = (((x - lo) / step) as usize).min(n - 1);
            bins[i] += v.count_at_value();
        }
        bins.into_iter()
            .enumerate()
            .map(|(i, c)| ((lo + step * (i + 1) as f64).exp() / 1000.0, c))
            .collect()
    }
}

/// A tiny fixed histogram (log-spaced from 0.1 ms to ~100 s) for per-second percentiles.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogHist {
    counts: Vec<u32>,
}

const LOG_BUCKETS: usize = 48;
const LOG_MIN_MS: f64 = 0.1;
/// Each bucket is this factor wider than the last (0.1 ms × 1.35^48 ≈ 180 s).
const LOG_STEP: f64 = 1.35;

impl LogHist {
    pub fn add(&mut self, ms: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; LOG_BUCKETS];
        }
        let i = if ms <= LOG_MIN_MS {
            0
        } else {
            ((ms / LOG_MIN_MS).ln() / LOG_STEP.ln()).ceil() as usize
        };
        self.counts[i.min(LOG_BUCKETS - 1)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// The quantile's bucket, interpolated inside it (geometric), in ms.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0.0;
        for (i, c) in self.counts.iter().enumerate() {
            let c = f64::from(*c);
            if c > 0.0 && seen + c >= rank {
                let upper = LOG_MIN_MS * LOG_STEP.powi(i as i32);
                let lower = if i == 0 { 0.0 } else { upper / LOG_STEP };
                let frac = (rank - seen) / c;
                return Some(lower + (upper - lower) * frac);
            }
            seen += c;
        }
        None
    }
}
