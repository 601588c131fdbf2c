//! A Prometheus-style histogram's counts: fixed upper bounds, a count per bucket, the sum and
//! the count. The gateway's `/metrics` and the simulator's vLLM `/metrics` both keep theirs in
//! it and print it in their own label layout.

#[derive(Debug, Clone)]
pub struct Buckets {
    bounds: &'static [f64],
    /// Observations in each bucket alone (not cumulative); above the last bound, none.
    counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Buckets {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// (upper bound, observations at or below it), as Prometheus prints its buckets; the
    /// `+Inf` bucket is `count`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds.iter().zip(&self.counts).scan(0, |cum, (b, c)| {
            *cum += c;
            Some((*b, *cum))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_overflow_counts_only_in_the_total() {
        let mut h = Buckets::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 7.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative().collect::<Vec<_>>(), [(0.1, 2), (1.0, 3)]);
        assert_eq!(h.count, 4);
        assert!((h.sum - 7.65).abs() < 1e-9);
    }
}
