//! Open-loop arrival times, as `vllm bench serve` draws them: gaps from a gamma distribution
//! with shape `burstiness` (1 = Poisson; infinite = evenly spaced) and mean `1/rate`.
//! Requests are sent at absolute target times, so lateness never accumulates (vllm#21104).
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};
use std::time::Duration;

/// Draws gaps one at a time (duration-bounded runs, and after a live change of rate).
pub struct GapSampler {
    rng: StdRng,
    rate: f64,
    burstiness: f64,
    gamma: Option<Gamma<f64>>,
}

impl GapSampler {
    pub fn new(rate: f64, burstiness: f64, seed: u64) -> Self {
        let mut s = Self {
            rng: StdRng::seed_from_u64(seed),
            rate,
            burstiness,
            gamma: None,
        };
        s.set_rate(rate);
        s
    }

    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate.max(1e-9);
        self.gamma = if self.burstiness.is_finite() && self.burstiness > 0.0 {
            Gamma::new(self.burstiness, 1.0 / (self.rate * self.burstiness)).ok()
        } else {
            None
        };
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Seconds to the next arrival.
    pub fn next_gap(&mut self) -> f64 {
        match &self.gamma {
            Some(g) => g.sample(&mut self.rng),
            None => 1.0 / self.rate,
        }
    }
}

/// Offsets from the start for `n` requests at `rate`, rescaled so the last one lands exactly
/// at `n / rate` (vLLM's correction of the seed-dependent 1-2 % drift).
pub fn schedule(n: usize, rate: f64, burstiness: f64, seed: u64) -> Vec<Duration> {
    if n == 0 {
        return Vec::new();
    }
    let mut g = GapSampler::new(rate, burstiness, seed);
    let mut t = 0.0;
    let mut raw: Vec<f64> = (0..n)
        .map(|_| {
            t += g.next_gap();
            t
        })
        .collect();
    let target = n as f64 / rate;
    let last = raw[n - 1];
    if last > 0.0 {
        let k = target / last;
        for v in &mut raw {
            *v *= k;
        }
    }
    raw.into_iter().map(crate::input::duration).collect()
}

/// How an open loop's rate goes from `start_rps` to `end_rps` over the requests (vLLM's
/// `--ramp-up-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ramp {
    pub strategy: RampStrategy,
    pub start_rps: f64,
    pub end_rps: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RampStrategy {
    Linear,
    Exponential,
}

impl Ramp {
    /// The rate for request `i` of `n`, as vLLM computes it: linear or geometric in the
    /// request's index, from the start rate at the first to the end rate at the last.
    pub fn rate(&self, i: usize, n: usize) -> f64 {
        let progress = i as f64 / (n.saturating_sub(1)).max(1) as f64;
        match self.strategy {
            RampStrategy::Linear => self.start_rps + (self.end_rps - self.start_rps) * progress,
            RampStrategy::Exponential => {
                self.start_rps * (self.end_rps / self.start_rps).powf(progress)
            }
        }
    }
}

/// Offsets for `n` requests whose rate ramps: each gap drawn at its request's rate (gamma
/// with shape `burstiness`), not rescaled afterwards (vLLM rescales only constant rates).
pub fn ramp_schedule(n: usize, ramp: Ramp, burstiness: f64, seed: u64) -> Vec<Duration> {
    let mut g = GapSampler::new(ramp.start_rps, burstiness, seed);
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            g.set_rate(ramp.rate(i, n));
            t += g.next_gap();
            crate::input::duration(t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_arrival_lands_at_n_over_rate() {
        for b in [0.5, 1.0, 4.0, f64::INFINITY] {
            let s = schedule(400, 20.0, b, 3);
            assert!((s[399].as_secs_f64() - 20.0).abs() < 1e-9, "burstiness {b}");
            assert!(s.windows(2).all(|w| w[1] >= w[0]));
        }
        let even = schedule(4, 2.0, f64::INFINITY, 0);
        let secs: Vec<f64> = even.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(secs, [0.5, 1.0, 1.5, 2.0]);
    }

    #[test]
    fn burstier_means_more_spread_gaps() {
        let cv = |b: f64| {
            let mut g = GapSampler::new(10.0, b, 9);
            let v: Vec<f64> = (0..20_000).map(|_| g.next_gap()).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
            assert!((mean - 0.1).abs() < 0.005, "mean gap is 1/rate: {mean}");
            var.sqrt() / mean
        };
        let (bursty, poisson, smooth) = (cv(0.25), cv(1.0), cv(16.0));
        assert!(
            (poisson - 1.0).abs() < 0.05,
            "Poisson gaps have CV 1: {poisson}"
        );
        assert!(bursty > 1.8 && smooth < 0.3, "{bursty} {smooth}");
    }

    #[test]
    fn a_ramp_goes_from_its_start_rate_to_its_end_rate() {
        let lin = Ramp {
            strategy: RampStrategy::Linear,
            start_rps: 2.0,
            end_rps: 20.0,
        };
        assert_eq!(
            (lin.rate(0, 11), lin.rate(5, 11), lin.rate(10, 11)),
            (2.0, 11.0, 20.0)
        );
        let exp = Ramp {
            strategy: RampStrategy::Exponential,
            ..lin
        };
        assert!((exp.rate(5, 11) - (40.0f64).sqrt()).abs() < 1e-9);
        // Evenly spaced: each gap is exactly 1 / its request's rate.
        let s = ramp_schedule(11, lin, f64::INFINITY, 0);
        let first = s[0].as_secs_f64();
        let last_gap = s[10].as_secs_f64() - s[9].as_secs_f64();
        assert!((first - 0.5).abs() < 1e-9 && (last_gap - 0.05).abs() < 1e-9);
    }
}
