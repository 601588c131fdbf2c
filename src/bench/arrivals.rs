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
}
