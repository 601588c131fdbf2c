//! The highest load that still meets an SLO (vLLM's `bench sweep serve_sla`): each probe is a
//! full measured run; the load doubles until a probe misses, then bisects between the last
//! probe that met the SLO and the first that missed until the step is below the tolerance.
use super::result::BenchResult;
use super::runner::{Load, Plan};
use serde::Serialize;

/// What the search turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    Rate,
    Concurrency,
}

impl Knob {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "rate" => Ok(Knob::Rate),
            "concurrency" => Ok(Knob::Concurrency),
            other => Err(format!("--find-max `{other}`: use rate or concurrency")),
        }
    }

    /// The knob's name in sentences ("the highest concurrency that ...").
    pub fn name(self) -> &'static str {
        match self {
            Knob::Rate => "rate (req/s)",
            Knob::Concurrency => "concurrency",
        }
    }

    /// `base` with its load set to `load` of this knob; an open loop keeps the base's
    /// burstiness and concurrency cap.
    pub fn plan(self, base: &Plan, load: f64) -> Plan {
        let mut plan = base.clone();
        plan.load = match self {
            Knob::Concurrency => Load::Closed {
                concurrency: load as usize,
            },
            Knob::Rate => {
                let (burstiness, max_concurrency) = match base.load {
                    Load::Open {
                        burstiness,
                        max_concurrency,
                        ..
                    } => (burstiness, max_concurrency),
                    Load::Closed { .. } => (1.0, None),
                };
                Load::Open {
                    rate: load,
                    burstiness,
                    max_concurrency,
                }
            }
        };
        plan
    }

    /// Where the doubling starts, and where it gives up.
    fn range(self) -> (f64, f64) {
        match self {
            Knob::Rate => (1.0, 100_000.0),
            Knob::Concurrency => (1.0, 4096.0),
        }
    }
}

/// One limit: a result key (`p99_ttft_ms`, `median_e2el_ms`, ...) and its highest value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    pub metric: String,
    pub max: f64,
}

const STATS: [&str; 6] = ["mean", "median", "p90", "p95", "p99", "max"];
const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

/// `p99_ttft_ms<=500,p99_tpot_ms<=50` (vLLM's serve_sla keys).
pub fn parse_slo(text: &str) -> Result<Vec<Limit>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once("<=")
            .ok_or_else(|| format!("--slo `{part}`: write METRIC<=VALUE, e.g. p99_ttft_ms<=500"))?;
        let k = k.trim();
        let known = STATS
            .iter()
            .flat_map(|s| METRICS.iter().map(move |m| format!("{s}_{m}_ms")))
            .any(|x| x == k);
        if !known {
            return Err(format!(
                "--slo `{k}`: not a metric (use STAT_METRIC_ms with STAT one of {} and METRIC one of {})",
                STATS.join(", "),
                METRICS.join(", ")
            ));
        }
        let max = crate::input::number(v.trim())
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| {
                format!(
                    "--slo `{part}`: `{}` is not a positive number of ms",
                    v.trim()
                )
            })?;
        out.push(Limit {
            metric: k.to_string(),
            max,
        });
    }
    if out.is_empty() {
        return Err("--slo: give at least one limit, e.g. p99_ttft_ms<=500".into());
    }
    Ok(out)
}

/// A result's value of `metric` (a key of its JSON).
pub fn value(r: &BenchResult, metric: &str) -> Option<f64> {
    r.to_json()[metric].as_f64()
}

/// One probe: the load, whether it met every limit, and the values checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub load: f64,
    pub ok: bool,
    /// (metric, value) for each limit.
    pub values: Vec<(String, Option<f64>)>,
    pub completed: u64,
    pub failed: u64,
    pub request_throughput: f64,
}

impl Probe {
    /// One line per probe, as the CLI prints it and the console lists it.
    pub fn line(&self, n: usize, knob: Knob) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(m, v)| format!("{m} {}", v.map_or("-".into(), |v| format!("{v:.1}"))))
            .collect();
        format!(
            "probe {n:>2}: {} {:<8} {:<6}  {} ({} ok, {} failed, {:.2} req/s)",
            knob.name(),
            crate::format::trim_float(self.load),
            if self.ok { "meets" } else { "misses" },
            values.join(", "),
            self.completed,
            self.failed,
            self.request_throughput
        )
    }
}

/// A probe meets the SLO when every limit holds and no request failed.
pub fn judge(load: f64, r: &BenchResult, slo: &[Limit]) -> Probe {
    let values: Vec<(String, Option<f64>)> = slo
        .iter()
        .map(|l| (l.metric.clone(), value(r, &l.metric)))
        .collect();
    let ok = r.failed == 0
        && r.completed > 0
        && slo
            .iter()
            .zip(&values)
            .all(|(l, (_, v))| v.is_some_and(|v| v <= l.max));
    Probe {
        load,
        ok,
        values,
        completed: r.completed,
        failed: r.failed,
        request_throughput: r.request_throughput,
    }
}

/// The search's state: pure, so the probing order is tested without running anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Search {
    pub knob: Knob,
    pub slo: Vec<Limit>,
    /// Stop when the bracket is narrower than this (requests/s for a rate, requests for a
    /// concurrency: at least 1).
    pub tolerance: f64,
    pub probes: Vec<Probe>,
    /// The highest load a probe can make real (see [`Search::capped_by`]), and why.
    pub cap: Option<(f64, String)>,
}

/// A concurrency probe must send this many times its concurrency in requests: fewer, and
/// most of the run is ramp-up and drain, not that load held.
pub const REQUESTS_PER_SLOT: u64 = 4;

impl Search {
    pub fn new(knob: Knob, slo: Vec<Limit>, tolerance: Option<f64>) -> Self {
        let tolerance = match knob {
            Knob::Concurrency => tolerance.unwrap_or(1.0).max(1.0),
            Knob::Rate => tolerance.unwrap_or(0.0),
        };
        Self {
            knob,
            slo,
            tolerance,
            probes: Vec::new(),
            cap: None,
        }
    }

    /// Caps the search at what the plan's stop allows: a concurrency probe of N requests
    /// holds at most N / 4 in flight for long enough to judge (a search of 100-request probes
    /// once answered 4096, with never more than 100 in flight).
    pub fn capped_by(mut self, plan: &Plan) -> Self {
        if let (Knob::Concurrency, super::runner::Stop::Requests(n)) = (self.knob, &plan.stop) {
            let cap = (*n / REQUESTS_PER_SLOT).max(1) as f64;
            self.cap = Some((
                cap,
                format!("{n} requests a probe hold at most {} in flight for long enough; give --requests {} to go to {}", crate::format::trim_float(cap), (cap as u64) * 2 * REQUESTS_PER_SLOT, (cap as u64) * 2),
            ));
        }
        self
    }

    /// The highest load the search goes to.
    fn limit(&self) -> f64 {
        let (_, limit) = self.knob.range();
        self.cap.as_ref().map_or(limit, |c| c.0.min(limit))
    }

    /// Whether a probe missed the SLO above every one that met it.
    pub fn knee_found(&self) -> bool {
        self.bracket().1.is_some()
    }

    /// The highest load that met the SLO, and the lowest that missed it.
    pub fn bracket(&self) -> (Option<f64>, Option<f64>) {
        let lo = self
            .probes
            .iter()
            .filter(|p| p.ok)
            .map(|p| p.load)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
        let hi = self
            .probes
            .iter()
            .filter(|p| !p.ok && lo.is_none_or(|l| p.load > l))
            .map(|p| p.load)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))));
        (lo, hi)
    }

    /// The next load to probe; `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        let (start, _) = self.knob.range();
        let limit = self.limit();
        match self.bracket() {
            (None, None) => Some(start),
            // Even the first probe missed.
            (None, Some(_)) => None,
            (Some(lo), None) => (lo < limit).then(|| (lo * 2.0).min(limit)),
            (Some(lo), Some(hi)) => {
                // A rate's tolerance defaults to 5% of what met the SLO.
                let tol = if self.knob == Knob::Rate && self.tolerance <= 0.0 {
                    lo * 0.05
                } else {
                    self.tolerance
                };
                if hi - lo <= tol {
                    return None;
                }
                let mid = (lo + hi) / 2.0;
                let mid = match self.knob {
                    Knob::Concurrency => mid.floor(),
                    Knob::Rate => mid,
                };
                (mid > lo && mid < hi).then_some(mid)
            }
        }
    }

    /// The answer: the highest load that met the SLO.
    pub fn answer(&self) -> Option<f64> {
        self.bracket().0
    }

    /// The answer in a sentence, with its margin and the first load that missed.
    pub fn summary(&self) -> String {
        let name = self.knob.name();
        let (lo, hi) = self.bracket();
        match lo {
            Some(lo) if hi.is_none() && self.next().is_some() => format!(
                "{name} {} met the SLO; stopped before a knee was found",
                crate::format::trim_float(lo)
            ),
            Some(lo) if hi.is_none() => format!(
                "no knee found up to {name} {}: every probe met the SLO{}",
                crate::format::trim_float(lo),
                match &self.cap {
                    Some((c, why)) if *c <= lo => format!(" ({why})"),
                    _ => " (the search's upper bound)".into(),
                }
            ),
            Some(lo) => {
                let margin: Vec<String> = self
                    .margin()
                    .iter()
                    .map(|(m, v, left)| format!("{m} {v:.1} ({left:.1} under the limit)"))
                    .collect();
                format!(
                    "highest {name} that meets the SLO: {} ({}){}",
                    crate::format::trim_float(lo),
                    margin.join(", "),
                    hi.map(|h| format!("; {} misses it", crate::format::trim_float(h)))
                        .unwrap_or_else(|| "; the search's upper bound was reached".into())
                )
            }
            None => format!(
                "no {name} meets the SLO: even {} misses it",
                hi.map(crate::format::trim_float).unwrap_or_default()
            ),
        }
    }

    /// The saved form: the search (answer, first miss, margin, every probe) and each probe's
    /// full result, in probing order.
    pub fn document(&self, results: &[BenchResult]) -> serde_json::Value {
        serde_json::json!({
            "find_max": {
                "knob": self.knob,
                "slo": self.slo,
                "tolerance": self.tolerance,
                "answer": self.answer(),
                "knee_found": self.knee_found(),
                "first_miss": self.bracket().1,
                "cap": self.cap.as_ref().map(|c| serde_json::json!({"load": c.0, "why": c.1})),
                "margin": self.margin(),
                "probes": self.probes,
            },
            "results": results.iter().map(BenchResult::to_json).collect::<Vec<_>>(),
        })
    }

    /// Per limit at the answer: (metric, value there, limit - value).
    pub fn margin(&self) -> Vec<(String, f64, f64)> {
        let Some(lo) = self.answer() else {
            return Vec::new();
        };
        let Some(p) = self.probes.iter().find(|p| p.ok && p.load == lo) else {
            return Vec::new();
        };
        self.slo
            .iter()
            .zip(&p.values)
            .filter_map(|(l, (m, v))| v.map(|v| (m.clone(), v, l.max - v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(load: f64, ok: bool) -> Probe {
        Probe {
            load,
            ok,
            values: vec![],
            completed: 1,
            failed: 0,
            request_throughput: 0.0,
        }
    }

    #[test]
    fn concurrency_doubles_then_bisects_to_the_knee() {
        let slo = parse_slo("p99_ttft_ms<=60").unwrap();
        let mut s = Search::new(Knob::Concurrency, slo, None);
        // A server whose knee is at 5: loads up to 5 meet the SLO.
        let mut seen = Vec::new();
        while let Some(c) = s.next() {
            seen.push(c);
            s.probes.push(probe(c, c <= 5.0));
        }
        assert_eq!(seen, [1.0, 2.0, 4.0, 8.0, 6.0, 5.0]);
        assert_eq!(s.answer(), Some(5.0));
        assert_eq!(s.bracket(), (Some(5.0), Some(6.0)));
    }

    #[test]
    fn a_rate_stops_within_its_tolerance() {
        let mut s = Search::new(
            Knob::Rate,
            parse_slo("p99_e2el_ms<=500").unwrap(),
            Some(0.5),
        );
        while let Some(r) = s.next() {
            s.probes.push(probe(r, r <= 37.3));
        }
        let (lo, hi) = s.bracket();
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!(lo <= 37.3 && hi > 37.3 && hi - lo <= 0.5, "{lo} {hi}");
    }

    #[test]
    fn a_first_probe_that_misses_ends_the_search_without_an_answer() {
        let mut s = Search::new(
            Knob::Concurrency,
            parse_slo("p99_ttft_ms<=1").unwrap(),
            None,
        );
        s.probes.push(probe(1.0, false));
        assert_eq!(s.next(), None);
        assert_eq!(s.answer(), None);
    }

    #[test]
    fn bad_slos_name_what_is_wrong() {
        assert!(parse_slo("p99_ttft<=5")
            .unwrap_err()
            .contains("not a metric"));
        assert!(parse_slo("p99_ttft_ms=5")
            .unwrap_err()
            .contains("METRIC<=VALUE"));
        assert!(parse_slo("p99_ttft_ms<=inf")
            .unwrap_err()
            .contains("not a positive"));
        assert!(parse_slo("").is_err());
        assert_eq!(
            parse_slo("p99_ttft_ms<=500, median_e2el_ms<=2000")
                .unwrap()
                .len(),
            2
        );
    }
}
