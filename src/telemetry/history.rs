//! Fixed-size histories for sparklines: the newest value goes in, the oldest falls out, and
//! memory stays flat however long the console runs.
use serde::Serialize;
use std::collections::VecDeque;

/// How many samples a sparkline keeps (two minutes at 1 Hz).
pub const DEFAULT_LEN: usize = 120;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ring {
    cap: usize,
    /// `None` marks a gap (a failed probe, a missing field).
    values: VecDeque<Option<f64>>,
}

impl Default for Ring {
    fn default() -> Self {
        Self::new(DEFAULT_LEN)
    }
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            values: VecDeque::with_capacity(cap.max(1)),
        }
    }

    pub fn push(&mut self, v: Option<f64>) {
        if self.values.len() == self.cap {
            self.values.pop_front();
        }
        self.values.push_back(v.filter(|x| x.is_finite()));
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn last(&self) -> Option<f64> {
        self.values.back().copied().flatten()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Option<f64>> + '_ {
        self.values.iter().copied()
    }

    /// The last `n` values scaled to 0..=`scale` against `max` (gaps are 0), for a sparkline.
    pub fn scaled(&self, n: usize, max: f64, scale: u64) -> Vec<u64> {
        let skip = self.values.len().saturating_sub(n);
        self.values
            .iter()
            .skip(skip)
            .map(|v| match v {
                Some(x) if max > 0.0 => ((x / max).clamp(0.0, 1.0) * scale as f64).round() as u64,
                _ => 0,
            })
            .collect()
    }

    pub fn max(&self) -> Option<f64> {
        self.values.iter().flatten().copied().reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_falls_out_and_gaps_stay_gaps() {
        let mut r = Ring::new(3);
        for v in [Some(1.0), None, Some(3.0), Some(f64::NAN), Some(5.0)] {
            r.push(v);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), [Some(3.0), None, Some(5.0)]);
        assert_eq!(r.scaled(10, 5.0, 8), [5, 0, 8]);
        assert_eq!(r.max(), Some(5.0));
        assert_eq!(r.last(), Some(5.0));
    }
}
