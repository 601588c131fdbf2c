//! Soak runs: a long run judged by drift, not by one set of percentiles over the whole run.
//! Requests are aggregated into windows as they end; each window closes on time with its
//! latency percentiles, throughput, errors, empty answers and the server's memory; nothing of
//! a closed window but its figures is kept, so a run of hours holds its memory flat. The
//! verdict applies named rules (club-3090's soak script's, by default) to the windows.
use super::recorder::{Dist, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

const MIB: f64 = 1024.0 * 1024.0;

/// The soak settings of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoakPlan {
    pub window_s: f64,
    pub rules: Rules,
}

/// The limits the verdict checks; each is a rule with a name (`--soak-rule NAME=VALUE`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub max_errors: u64,
    pub max_empty_answers: u64,
    /// Server RSS growth from the end of the first window (the warm-up) to the last.
    pub rss_growth_mib: f64,
    pub gpu_growth_mib: f64,
    /// Median tokens/s of the last windows over the first, at least.
    pub tps_retention: f64,
    /// p99 TTFT of the last window over the first, at most.
    pub ttft_p99_ratio: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_errors: 0,
            max_empty_answers: 0,
            rss_growth_mib: 200.0,
            gpu_growth_mib: 200.0,
            tps_retention: 0.98,
            ttft_p99_ratio: 1.5,
        }
    }
}

impl Rules {
    /// Applies `NAME=VALUE` (the names the verdict prints).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = spec.split_once('=').ok_or_else(|| {
            format!("--soak-rule `{spec}`: use NAME=VALUE, e.g. rss_growth_mib=100")
        })?;
        let v: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                format!("--soak-rule {name}: `{value}` is not a number at or above 0")
            })?;
        match name.trim() {
            "errors" => self.max_errors = v as u64,
            "empty_answers" => self.max_empty_answers = v as u64,
            "rss_growth_mib" => self.rss_growth_mib = v,
            "gpu_growth_mib" => self.gpu_growth_mib = v,
            "tps_retention" => self.tps_retention = v,
            "ttft_p99_ratio" => self.ttft_p99_ratio = v,
            other => {
                return Err(format!(
                    "--soak-rule: unknown rule `{other}` (errors, empty_answers, rss_growth_mib, gpu_growth_mib, tps_retention, ttft_p99_ratio)"
                ))
            }
        }
        Ok(())
    }
}

/// The server's memory at a window's close.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    pub rss_bytes: Option<u64>,
    pub gpu_bytes: Option<u64>,
    /// Where it was read (`process group 1234`, `/metrics`).
    pub source: String,
}

/// One closed window's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
    /// Shorter than the others (the run's end); the verdict leaves it out.
    pub partial: bool,
    pub completed: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    /// HTTP 200 with no tokens.
    pub empty_answers: u64,
    /// Streams that ended without `usage`.
    pub no_usage: u64,
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub tpot_p99_ms: Option<f64>,
    pub e2el_p50_ms: Option<f64>,
    pub e2el_p99_ms: Option<f64>,
    pub memory: Option<Memory>,
}

#[derive(Debug, Clone, Default)]
struct Acc {
    completed: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    empty: u64,
    no_usage: u64,
    output_tokens: u64,
    ttft: Dist,
    tpot: Dist,
    e2el: Dist,
}

/// The open window and the closed ones.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    pub width_s: f64,
    open: Acc,
    pub closed: Vec<Window>,
}

impl Windows {
    pub fn new(width_s: f64) -> Self {
        Windows {
            width_s: width_s.max(0.001),
            ..Self::default()
        }
    }

    /// When the open window ends, seconds into the run.
    pub fn open_ends_at(&self) -> f64 {
        (self.closed.len() + 1) as f64 * self.width_s
    }

    pub fn add(&mut self, o: &Outcome) {
        let a = &mut self.open;
        match &o.error {
            Some((class, _)) => {
                a.failed += 1;
                *a.errors.entry(class.clone()).or_default() += 1;
            }
            None => {
                a.completed += 1;
                let (out, from_usage) = o.output_tokens();
                a.output_tokens += out;
                if out == 0 {
                    a.empty += 1;
                }
                if !from_usage {
                    a.no_usage += 1;
                }
                if let Some(t) = o.ttft_s {
                    a.ttft.add_us(t * 1e6);
                }
                if let Some(t) = o.tpot_s() {
                    a.tpot.add_us(t * 1e6);
                }
                if let Some(e) = o.e2el_s {
                    a.e2el.add_us(e * 1e6);
                }
            }
        }
    }

    /// Closes the open window if `now_s` is past its end; the window closed, if any.
    pub fn tick(&mut self, now_s: f64) -> Option<&mut Window> {
        if now_s < self.open_ends_at() {
            return None;
        }
        self.close(self.open_ends_at(), false)
    }

    /// Closes the open window at the run's end (partial when shorter than the others).
    pub fn finish(&mut self, end_s: f64) -> Option<&mut Window> {
        let start = self.closed.len() as f64 * self.width_s;
        let a = &self.open;
        if end_s <= start || (a.completed + a.failed == 0 && end_s - start < self.width_s) {
            return None;
        }
        let partial = end_s - start < self.width_s * 0.999;
        self.close(end_s.min(self.open_ends_at()), partial)
    }

    fn close(&mut self, end_s: f64, partial: bool) -> Option<&mut Window> {
        let a = std::mem::take(&mut self.open);
        let start_s = self.closed.len() as f64 * self.width_s;
        let secs = (end_s - start_s).max(1e-9);
        let q = |d: &Dist, x: f64| (d.count() > 0).then(|| d.quantile_ms(x));
        self.closed.push(Window {
            index: self.closed.len(),
            start_s,
            end_s,
            partial,
            completed: a.completed,
            failed: a.failed,
            errors: a.errors,
            empty_answers: a.empty,
            no_usage: a.no_usage,
            requests_per_s: a.completed as f64 / secs,
            output_tokens_per_s: a.output_tokens as f64 / secs,
            ttft_p50_ms: q(&a.ttft, 0.5),
            ttft_p99_ms: q(&a.ttft, 0.99),
            tpot_p50_ms: q(&a.tpot, 0.5),
            tpot_p99_ms: q(&a.tpot, 0.99),
            e2el_p50_ms: q(&a.e2el, 0.5),
            e2el_p99_ms: q(&a.e2el, 0.99),
            memory: None,
        });
        self.closed.last_mut()
    }
}

/// What a soak run leaves: its windows, the rules and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoakResult {
    pub window_s: f64,
    pub windows: Vec<Window>,
    pub rules: Rules,
    pub verdict: Verdict,
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    pub name: &'static str,
    pub limit: String,
    /// What was measured; `None`: not measurable on this run (said in `detail`).
    pub value: Option<String>,
    /// `None` when not measured.
    pub pass: Option<bool>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub pass: bool,
    pub rules: Vec<RuleResult>,
}

impl Verdict {
    /// `PASS` or `FAIL: rule (value, limit)` for each failed rule.
    pub fn line(&self) -> String {
        if self.pass {
            let skipped: Vec<&str> = self
                .rules
                .iter()
                .filter(|r| r.pass.is_none())
                .map(|r| r.name)
                .collect();
            return if skipped.is_empty() {
                "soak PASS: every rule held".into()
            } else {
                format!("soak PASS (not measured: {})", skipped.join(", "))
            };
        }
        let failed: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.pass == Some(false))
            .map(|r| {
                format!(
                    "{} {} (limit {})",
                    r.name,
                    r.value.as_deref().unwrap_or("?"),
                    r.limit
                )
            })
            .collect();
        format!("soak FAIL: {}", failed.join("; "))
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn growth_rule(name: &'static str, limit_mib: f64, values: Vec<u64>) -> RuleResult {
    let limit = format!("{limit_mib} MiB");
    match (values.first(), values.last()) {
        (Some(a), Some(b)) if values.len() >= 2 => {
            let g = (*b as f64 - *a as f64) / MIB;
            RuleResult {
                name,
                limit,
                value: Some(format!("{g:+.1} MiB")),
                pass: Some(g <= limit_mib),
                detail: format!(
                    "{:.1} MiB after the first window, {:.1} MiB at the end",
                    *a as f64 / MIB,
                    *b as f64 / MIB
                ),
            }
        }
        _ => RuleResult {
            name,
            limit,
            value: None,
            pass: None,
            detail: "fewer than two windows with a reading".into(),
        },
    }
}

/// The verdict on the closed windows (partial ones left out unless there is nothing else).
pub fn verdict(all: &[Window], r: &Rules) -> Verdict {
    let full: Vec<&Window> = all.iter().filter(|w| !w.partial).collect();
    let w: Vec<&Window> = if full.is_empty() {
        all.iter().collect()
    } else {
        full
    };
    let errors: u64 = all.iter().map(|w| w.failed).sum();
    let empty: u64 = all.iter().map(|w| w.empty_answers).sum();
    let mut rules = vec![
        RuleResult {
            name: "errors",
            limit: r.max_errors.to_string(),
            value: Some(errors.to_string()),
            pass: Some(errors <= r.max_errors),
            detail: "failed requests over the whole run".into(),
        },
        RuleResult {
            name: "empty_answers",
            limit: r.max_empty_answers.to_string(),
            value: Some(empty.to_string()),
            pass: Some(empty <= r.max_empty_answers),
            detail: "answers with HTTP 200 and no tokens".into(),
        },
    ];
    let rss = w
        .iter()
        .filter_map(|w| w.memory.as_ref()?.rss_bytes)
        .collect();
    rules.push(growth_rule("rss_growth_mib", r.rss_growth_mib, rss));
    let gpu = w
        .iter()
        .filter_map(|w| w.memory.as_ref()?.gpu_bytes)
        .collect();
    rules.push(growth_rule("gpu_growth_mib", r.gpu_growth_mib, gpu));
    let k = (w.len() / 2).clamp(1, 5);
    let tps: Vec<f64> = w.iter().map(|w| w.output_tokens_per_s).collect();
    rules.push(if w.len() >= 2 {
        let first = median(tps[..k].to_vec()).unwrap_or(0.0);
        let last = median(tps[tps.len() - k..].to_vec()).unwrap_or(0.0);
        let ret = if first > 0.0 { last / first } else { 1.0 };
        RuleResult {
            name: "tps_retention",
            limit: format!("{}", r.tps_retention),
            value: Some(format!("{ret:.3}")),
            pass: Some(ret >= r.tps_retention),
            detail: format!(
                "median tokens/s of the last {k} windows {last:.1} over the first {k} {first:.1}"
            ),
        }
    } else {
        RuleResult {
            name: "tps_retention",
            limit: r.tps_retention.to_string(),
            value: None,
            pass: None,
            detail: "fewer than two windows".into(),
        }
    });
    let p99: Vec<f64> = w.iter().filter_map(|w| w.ttft_p99_ms).collect();
    rules.push(match (p99.first(), p99.last()) {
        (Some(a), Some(b)) if p99.len() >= 2 && *a > 0.0 => RuleResult {
            name: "ttft_p99_ratio",
            limit: format!("{}", r.ttft_p99_ratio),
            value: Some(format!("{:.2}", b / a)),
            pass: Some(b / a <= r.ttft_p99_ratio),
            detail: format!("p99 TTFT {b:.1} ms in the last window, {a:.1} ms in the first"),
        },
        _ => RuleResult {
            name: "ttft_p99_ratio",
            limit: r.ttft_p99_ratio.to_string(),
            value: None,
            pass: None,
            detail: "fewer than two windows with a TTFT".into(),
        },
    });
    Verdict {
        pass: rules.iter().all(|r| r.pass != Some(false)),
        rules,
    }
}

/// A window as a line of the progress table.
pub fn window_line(w: &Window, first: Option<&Window>) -> String {
    let drift = |now: Option<f64>, then: Option<f64>| match (now, then) {
        (Some(n), Some(t)) if t > 0.0 && first.is_some_and(|f| f.index != w.index) => {
            format!(" ({:+.0}%)", (n / t - 1.0) * 100.0)
        }
        _ => String::new(),
    };
    let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    let mem = w
        .memory
        .as_ref()
        .and_then(|m| m.rss_bytes)
        .map(|b| {
            let d = first
                .and_then(|f| f.memory.as_ref()?.rss_bytes)
                .filter(|_| first.is_some_and(|f| f.index != w.index))
                .map(|a| format!(" ({:+.1})", (b as f64 - a as f64) / MIB))
                .unwrap_or_default();
            format!("{:.0} MiB{d}", b as f64 / MIB)
        })
        .unwrap_or_else(|| "-".into());
    format!(
        "window {:>3} {:>6}  ok {:>6} err {:>3} empty {:>3}  tok/s {:>8.1}{}  TTFT p50 {} p99 {}{}  TPOT p99 {}  E2EL p99 {}  RSS {mem}{}",
        w.index,
        format!("{:.0}-{:.0}s", w.start_s, w.end_s),
        w.completed,
        w.failed,
        w.empty_answers,
        w.output_tokens_per_s,
        drift(Some(w.output_tokens_per_s), first.map(|f| f.output_tokens_per_s)),
        f(w.ttft_p50_ms),
        f(w.ttft_p99_ms),
        drift(w.ttft_p99_ms, first.and_then(|f| f.ttft_p99_ms)),
        f(w.tpot_p99_ms),
        f(w.e2el_p99_ms),
        if w.partial { "  (partial)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(end: f64, ttft: f64, tokens: u64) -> Outcome {
        Outcome {
            start_s: end - ttft - 0.1,
            end_s: end,
            ttft_s: Some(ttft),
            e2el_s: Some(ttft + 0.1),
            completion_tokens: Some(tokens),
            content_events: tokens as u32,
            ..Outcome::default()
        }
    }

    #[test]
    fn windows_close_on_time_and_keep_only_their_figures() {
        let mut w = Windows::new(10.0);
        w.add(&ok(1.0, 0.02, 10));
        w.add(&ok(2.0, 0.04, 10));
        assert!(w.tick(9.99).is_none());
        let first = w.tick(10.0).unwrap().clone();
        assert_eq!(
            (first.index, first.completed, first.start_s, first.end_s),
            (0, 2, 0.0, 10.0)
        );
        assert!((first.output_tokens_per_s - 2.0).abs() < 1e-9);
        // A quiet window still closes, with nothing in it.
        let quiet = w.tick(25.0).unwrap().clone();
        assert_eq!(
            (quiet.index, quiet.completed, quiet.ttft_p99_ms),
            (1, 0, None)
        );
        w.add(&Outcome {
            error: Some(("http_5xx".into(), "503".into())),
            ..ok(21.0, 0.0, 0)
        });
        w.add(&ok(22.0, 0.01, 0));
        let last = w.finish(24.0).unwrap().clone();
        assert!(last.partial);
        assert_eq!((last.failed, last.empty_answers), (1, 1));
    }

    fn window(i: usize, tps: f64, p99: f64, rss_mib: u64) -> Window {
        Window {
            index: i,
            output_tokens_per_s: tps,
            ttft_p99_ms: Some(p99),
            memory: Some(Memory {
                rss_bytes: Some(rss_mib << 20),
                gpu_bytes: None,
                source: "test".into(),
            }),
            ..Window::default()
        }
    }

    #[test]
    fn the_verdict_names_the_rule_that_failed() {
        let steady: Vec<Window> = (0..6).map(|i| window(i, 100.0, 50.0, 1000)).collect();
        let v = verdict(&steady, &Rules::default());
        assert!(v.pass, "{v:?}");
        assert_eq!(v.line(), "soak PASS (not measured: gpu_growth_mib)");
        let leaking: Vec<Window> = (0..6)
            .map(|i| window(i, 100.0, 50.0, 1000 + 100 * i as u64))
            .collect();
        let v = verdict(&leaking, &Rules::default());
        assert!(!v.pass);
        assert_eq!(
            v.line(),
            "soak FAIL: rss_growth_mib +500.0 MiB (limit 200 MiB)"
        );
        let slowing: Vec<Window> = (0..6)
            .map(|i| window(i, 100.0 - 5.0 * i as f64, 50.0 + 20.0 * i as f64, 1000))
            .collect();
        let v = verdict(&slowing, &Rules::default());
        let failed: Vec<&str> = v
            .rules
            .iter()
            .filter(|r| r.pass == Some(false))
            .map(|r| r.name)
            .collect();
        assert_eq!(failed, ["tps_retention", "ttft_p99_ratio"]);
        let mut r = Rules::default();
        r.set("rss_growth_mib=600").unwrap();
        assert!(verdict(&leaking, &r).pass);
        assert!(r.set("nope=1").unwrap_err().contains("unknown rule `nope`"));
        assert!(r.set("errors=-1").is_err());
    }
}
