//! A tolerant reader of the Prometheus text exposition format (0.0.4 and OpenMetrics 1.0.0),
//! for vLLM's `/metrics` and DCGM exporters: unknown lines are skipped, never fatal.

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub samples: Vec<Sample>,
}

/// Which series to take: every label given must match (a missing label never matches).
pub type Filter<'a> = &'a [(&'a str, &'a str)];

fn matches(s: &Sample, filter: Filter) -> bool {
    filter.iter().all(|(k, v)| s.label(k) == Some(v))
}

impl Page {
    pub fn parse(text: &str) -> Page {
        Page {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    pub fn series<'a>(
        &'a self,
        name: &'a str,
        filter: Filter<'a>,
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && matches(s, filter))
    }

    /// The sum over every matching series (several engines, several GPUs); `None` if there
    /// is no such series.
    pub fn sum(&self, name: &str, filter: Filter) -> Option<f64> {
        let mut it = self.series(name, filter).peekable();
        it.peek()?;
        Some(it.map(|s| s.value).sum())
    }

    /// The first of several names that is present (metrics get renamed between versions).
    pub fn sum_any(&self, names: &[&str], filter: Filter) -> Option<f64> {
        names.iter().find_map(|n| self.sum(n, filter))
    }

    /// A histogram's buckets summed over matching series.
    pub fn histogram(&self, name: &str, filter: Filter) -> Option<Histogram> {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in self.series(&bucket, filter) {
            let Some(le) = s.label("le").and_then(parse_value) else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += s.value,
                None => buckets.push((le, s.value)),
            }
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Histogram {
            buckets,
            count: self.sum(&format!("{name}_count"), filter).unwrap_or(0.0),
            sum: self.sum(&format!("{name}_sum"), filter).unwrap_or(0.0),
        })
    }

    pub fn histogram_any(&self, names: &[&str], filter: Filter) -> Option<Histogram> {
        names.iter().find_map(|n| self.histogram(n, filter))
    }

    /// Distinct values of one label across a metric's series.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.label(label).map(String::from))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Cumulative buckets `(upper bound, count)`, ascending, `+Inf` last.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl Histogram {
    /// What was observed between `earlier` and `self` (counter resets give `self` as is).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        if self.count < earlier.count {
            return self.clone();
        }
        let buckets = self
            .buckets
            .iter()
            .map(|(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, c)| *c);
                (*le, (c - before).max(0.0))
            })
            .collect();
        Histogram {
            buckets,
            count: self.count - earlier.count,
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// The q-quantile (0..1) by linear interpolation inside the bucket, as Prometheus'
    /// `histogram_quantile` does; `None` without observations. A quantile in the `+Inf`
    /// bucket is reported as the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut prev_le = 0.0;
        let mut prev_c = 0.0;
        for &(le, c) in &self.buckets {
            if c >= rank && c > prev_c {
                if le.is_infinite() {
                    return Some(prev_le);
                }
                let frac = (rank - prev_c) / (c - prev_c);
                return Some(prev_le + (le - prev_le) * frac);
            }
            if le.is_finite() {
                prev_le = le;
            }
            prev_c = c;
        }
        Some(prev_le)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// `name{a="x",b="y\"z"} 1.5 [timestamp] [# exemplar]`
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next().and_then(parse_value)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels up to the closing `}`; returns them and what follows.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((out, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut val = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => val.push('\n'),
                    other => val.push(other),
                },
                '"' => break i,
                c => val.push(c),
            }
        };
        out.push((key, val));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_labels_escapes_and_special_values() {
        let p = Page::parse(
            "# HELP x y\n# TYPE x gauge\nx{a=\"1\",b=\"q\\\"u\\\\o\\nte\"} 2.5 1700000000000\ny +Inf\nz NaN\nbad line here\nw{le=\"0.5\"} 3 # {trace_id=\"abc\"} 0.4\n",
        );
        assert_eq!(p.samples.len(), 4);
        assert_eq!(p.samples[0].label("b"), Some("q\"u\\o\nte"));
        assert_eq!(p.samples[0].value, 2.5);
        assert!(p.samples[1].value.is_infinite());
        assert!(p.samples[2].value.is_nan());
        assert_eq!(p.samples[3].value, 3.0);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let h = Histogram {
            buckets: vec![(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)],
            count: 40.0,
            sum: 12.0,
        };
        assert!((h.quantile(0.5).unwrap() - 0.3).abs() < 1e-9);
        assert!((h.quantile(0.25).unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(h.quantile(1.0), Some(1.0));
        let inf = Histogram {
            buckets: vec![(1.0, 1.0), (f64::INFINITY, 5.0)],
            count: 5.0,
            sum: 50.0,
        };
        assert_eq!(
            inf.quantile(0.99),
            Some(1.0),
            "+Inf bucket: the highest finite bound"
        );
        let none = Histogram {
            buckets: vec![(1.0, 0.0), (f64::INFINITY, 0.0)],
            count: 0.0,
            sum: 0.0,
        };
        assert_eq!(none.quantile(0.5), None);
    }
}
