//! The Bench pane: the form, runs, live load changes and finished results.
use super::super::action::Effect;
use super::super::app::*;
use super::*;
use crate::bench::arrivals::{Ramp, RampStrategy};

pub(super) fn bench_field_text(app: &App, field: usize) -> Option<String> {
    let f = &app.bench.form;
    Some(match field {
        2 if f.open => f.rate.to_string(),
        2 => f.concurrency.to_string(),
        4 if f.by_duration => f.duration_s.to_string(),
        4 => f.requests.to_string(),
        5 => f.input_len.to_string(),
        6 => f.output_len.to_string(),
        10 => f.slo.clone(),
        _ => return None,
    })
}

pub(super) fn edit_bench_field(app: &mut App) {
    if app.bench.running.is_some() {
        return;
    }
    match bench_field_text(app, app.bench.field) {
        Some(t) => app.typing = Typing::BenchField(app.bench.field, t),
        None => cycle_bench_field(app, true),
    }
}

pub(super) fn apply_bench_field(app: &mut App, field: usize, text: &str) -> bool {
    let t = text.trim();
    let f = &mut app.bench.form;
    use crate::input;
    let ok: Result<(), String> = match field {
        2 if f.open => input::rate(t).map(|x| f.rate = x),
        2 => input::concurrency(t).map(|x| f.concurrency = x),
        4 if f.by_duration => input::seconds_text(t, 0.001).map(|x| f.duration_s = x),
        4 => input::count_text(t, 1, u64::MAX).map(|x| f.requests = x),
        5 => input::count_text(t, 1, u64::from(u32::MAX)).map(|x| f.input_len = x as u32),
        6 => input::count_text(t, 1, u64::from(u32::MAX)).map(|x| f.output_len = x as u32),
        10 => crate::bench::find_max::parse_slo(t)
            .map(|_| f.slo = t.to_string())
            .map_err(|e| e.trim_start_matches("--slo").trim_start().to_string()),
        _ => Ok(()),
    };
    if let Err(e) = &ok {
        app.notify(format!("{}: {e}", BENCH_FIELDS[field]), true);
    }
    ok.is_ok()
}

/// Until the operator picks a bench route, keep the form on one that answers: the default
/// route when it is up, else the first other route that is up (the built-in simulator last).
/// A load test measures one route without fallback, so a down default would only fail.
pub(super) fn follow_up_route(app: &mut App) {
    use crate::telemetry::routes::Health;
    if app.bench.form.route_chosen || app.bench.running.is_some() {
        return;
    }
    let routes = &app.routes.table.routes;
    let up = |name: &str| {
        routes
            .iter()
            .any(|r| r.route == name && r.state() == Health::Up)
    };
    let builtin = |name: &str| {
        routes
            .iter()
            .any(|r| r.route == name && r.kind == crate::provider::ProviderKind::Builtin)
    };
    let names = &app.chat.routes;
    let pick = names
        .iter()
        .position(|n| routes.iter().any(|r| r.default && r.route == *n) && up(n))
        .or_else(|| names.iter().position(|n| up(n) && !builtin(n)))
        .or_else(|| names.iter().position(|n| up(n)));
    if let Some(i) = pick {
        app.bench.form.route = i;
        if app.bench.form.compare == Some(i) {
            app.bench.form.compare = None;
        }
    }
}

/// A Bench form field being typed: enter keeps it when it is usable, esc drops it.
pub(super) fn bench_typing(app: &mut App, field: usize, mut buf: String, k: KeyEvent) {
    match line_edit(&mut buf, &k) {
        LineKey::Enter => {
            if apply_bench_field(app, field, &buf) {
                app.typing = Typing::None;
            }
        }
        LineKey::Esc => app.typing = Typing::None,
        _ => app.typing = Typing::BenchField(field, buf),
    }
}

pub(super) fn cycle_bench_field(app: &mut App, forward: bool) {
    if app.bench.running.is_some() {
        return;
    }
    let n = app.chat.routes.len().max(1);
    let f = &mut app.bench.form;
    match app.bench.field {
        0 => {
            f.route = if forward {
                (f.route + 1) % n
            } else {
                (f.route + n - 1) % n
            };
            f.route_chosen = true;
        }
        1 => {
            // closed -> open (Poisson) -> open with a ramp-up -> closed
            let kinds = [(false, false), (true, false), (true, true)];
            let cur = kinds
                .iter()
                .position(|k| *k == (f.open, f.ramp))
                .unwrap_or(0);
            let next = (if forward {
                cur + 1
            } else {
                cur + kinds.len() - 1
            }) % kinds.len();
            (f.open, f.ramp) = kinds[next];
        }
        3 => f.by_duration = !f.by_duration,
        9 => {
            // single run -> find max -> soak -> single run
            let modes = [(false, false), (true, false), (false, true)];
            let cur = modes
                .iter()
                .position(|m| *m == (f.find_max, f.soak))
                .unwrap_or(0);
            let next = (if forward {
                cur + 1
            } else {
                cur + modes.len() - 1
            }) % modes.len();
            (f.find_max, f.soak) = modes[next];
            if f.soak {
                f.by_duration = true;
            }
        }
        8 => {
            let k = WORKLOADS.len();
            f.workload = if forward {
                (f.workload + 1) % k
            } else {
                (f.workload + k - 1) % k
            };
        }
        7 => {
            // none -> each other route -> none
            let mut options: Vec<Option<usize>> = vec![None];
            options.extend((0..n).filter(|i| *i != f.route).map(Some));
            let cur = options.iter().position(|o| *o == f.compare).unwrap_or(0);
            let k = options.len();
            f.compare = options[if forward {
                (cur + 1) % k
            } else {
                (cur + k - 1) % k
            }];
        }
        _ => more_less_field(app, forward),
    }
}

pub(super) fn more_less_field(app: &mut App, more: bool) {
    let f = &mut app.bench.form;
    let grow = |v: u64| {
        if more {
            v.saturating_mul(2).max(1)
        } else {
            (v / 2).max(1)
        }
    };
    match app.bench.field {
        2 if f.open => {
            f.rate = if more {
                (f.rate * 2.0).min(crate::input::MAX_RATE)
            } else {
                (f.rate / 2.0).max(0.1)
            }
        }
        2 => f.concurrency = grow(f.concurrency as u64).min(crate::input::MAX_CONCURRENCY) as usize,
        4 if f.by_duration => {
            f.duration_s = if more {
                (f.duration_s * 2.0).min(crate::input::MAX_SECONDS)
            } else {
                (f.duration_s / 2.0).max(1.0)
            }
        }
        4 => f.requests = grow(f.requests),
        5 => f.input_len = grow(u64::from(f.input_len)).min(u64::from(u32::MAX)) as u32,
        6 => f.output_len = grow(u64::from(f.output_len)).min(u64::from(u32::MAX)) as u32,
        _ => {}
    }
}

pub(super) fn more_less(app: &mut App, fx: &mut Vec<Effect>, more: bool) {
    let Some(r) = &app.bench.running else {
        more_less_field(app, more);
        return;
    };
    if searching(app) {
        // A probe's load is what it measures: changing it would judge another load.
        app.notify(
            "the search sets each probe's load (esc stops the search)",
            true,
        );
        return;
    }
    let p: &Progress = &r.progress;
    let ctl = match (p.rate, p.concurrency) {
        (Some(rate), _) => Control::SetRate(if more {
            (rate * 1.25).min(crate::input::MAX_RATE)
        } else {
            (rate / 1.25).max(0.01)
        }),
        (None, Some(c)) => Control::SetConcurrency(if more {
            (c + 1).min(crate::input::MAX_CONCURRENCY as usize)
        } else {
            c.saturating_sub(1).max(1)
        }),
        _ => return,
    };
    match ctl {
        Control::SetRate(x) => app.notify(format!("rate → {x:.2} req/s"), false),
        Control::SetConcurrency(c) => app.notify(format!("concurrency → {c}"), false),
        Control::Cancel => {}
    }
    fx.push(Effect::BenchControl(ctl));
}

/// The plan the form describes.
pub fn bench_plan(f: &BenchForm) -> Plan {
    let load = if f.open {
        Load::Open {
            rate: f.rate,
            burstiness: 1.0,
            max_concurrency: None,
        }
    } else {
        Load::Closed {
            concurrency: f.concurrency,
        }
    };
    let stop = if f.by_duration {
        Stop::DurationS(f.duration_s)
    } else {
        Stop::Requests(f.requests)
    };
    let workload = match f.workload {
        1 => Workload::Prefix {
            prefix_len: f.input_len,
            suffix_len: (f.input_len / 4).max(1),
            groups: 10,
            output_len: f.output_len,
        },
        // Conversations need a closed loop; an open form runs them at its concurrency.
        2 => Workload::MultiTurn {
            turns: 4,
            input_len: f.input_len,
            output_len: f.output_len,
            think_time_s: 0.0,
        },
        _ => Workload::Random {
            input_len: f.input_len,
            output_len: f.output_len,
            range_ratio: 0.0,
        },
    };
    let load = match (f.workload, load) {
        (2, Load::Open { .. }) => Load::Closed {
            concurrency: f.concurrency,
        },
        (_, l) => l,
    };
    let ramp = matches!(load, Load::Open { .. } if f.ramp).then_some(Ramp {
        strategy: RampStrategy::Linear,
        start_rps: f.rate.min(1.0),
        end_rps: f.rate,
    });
    let soak = (f.soak && f.by_duration).then(|| crate::bench::soak::SoakPlan {
        window_s: f.soak_window_s(),
        rules: Default::default(),
    });
    Plan {
        ramp,
        soak,
        ..Plan::new(load, stop, workload)
    }
}

pub(super) fn run_bench(app: &mut App, fx: &mut Vec<Effect>) {
    if read_only(app, "run load tests") {
        return;
    }
    if app.bench.running.is_some() {
        app.notify("a load test is running (esc stops it)", true);
        return;
    }
    let f = app.bench.form.clone();
    let Some(route) = app.chat.routes.get(f.route).cloned() else {
        return;
    };
    if f.soak && !f.by_duration {
        app.notify(
            "soak: set stop after to a duration (a soak run is judged by its windows over time)",
            true,
        );
        return;
    }
    if f.find_max {
        start_find_max(app, fx, route);
        return;
    }
    if f.open && f.ramp && f.by_duration {
        app.notify(
            "load: a ramp-up runs over a number of requests (set stop after to requests)",
            true,
        );
        return;
    }
    app.bench.find_max = None;
    let then = f.compare.and_then(|i| app.chat.routes.get(i).cloned());
    app.bench.results.clear();
    launch(app, fx, route, bench_plan(&f), then);
}

/// Starts one run of `plan` on `route` under a fresh id; `then` runs the same on another
/// route after it.
fn launch(app: &mut App, fx: &mut Vec<Effect>, route: String, plan: Plan, then: Option<String>) {
    let id = app.bench.next_id;
    app.bench.next_id += 1;
    app.bench.running = Some(RunningBench {
        id,
        route: route.clone(),
        progress: Progress::default(),
        then,
    });
    fx.push(Effect::BenchStart {
        id,
        route,
        plan: Box::new(plan),
    });
}

/// A find-max search is probing (its result view and rules apply).
pub(super) fn searching(app: &App) -> bool {
    app.bench.running.is_some()
        && app
            .bench
            .find_max
            .as_ref()
            .is_some_and(|s| s.current.is_some())
}

/// The form's SLO search: the knob is the form's load (closed: concurrency, open: rate), each
/// probe a full run of the form's workload and stop condition.
fn start_find_max(app: &mut App, fx: &mut Vec<Effect>, route: String) {
    use crate::bench::find_max::{parse_slo, Knob, Search};
    let f = app.bench.form.clone();
    let slo = match parse_slo(&f.slo) {
        Ok(s) => s,
        Err(e) => {
            app.notify(
                format!("SLO: {}", e.trim_start_matches("--slo").trim_start()),
                true,
            );
            return;
        }
    };
    let knob = if f.open {
        Knob::Rate
    } else {
        Knob::Concurrency
    };
    // Each probe holds its load steady: a ramp would measure many loads in one probe.
    let base = Plan {
        ramp: None,
        ..bench_plan(&f)
    };
    let search = Search::new(knob, slo, None).capped_by(&base);
    let Some(load) = search.next() else { return };
    if f.compare.is_some() {
        app.notify(
            format!("find max on {route} only (compare is for single runs)"),
            false,
        );
    }
    app.bench.results.clear();
    app.bench.find_max = Some(FindMaxRun {
        route: route.clone(),
        search,
        base,
        results: Vec::new(),
        current: Some(load),
        stopped: false,
    });
    start_probe(app, fx, route, load);
}

fn start_probe(app: &mut App, fx: &mut Vec<Effect>, route: String, load: f64) {
    let Some(fm) = app.bench.find_max.as_mut() else {
        return;
    };
    fm.current = Some(load);
    let plan = fm.search.knob.plan(&fm.base, load);
    launch(app, fx, route, plan, None);
}

/// A probe ended: judge it and start the next, or end the search with its answer.
fn probe_done(
    app: &mut App,
    result: Result<Vec<crate::bench::BenchResult>, String>,
    fx: &mut Vec<Effect>,
) {
    use crate::bench::find_max::judge;
    app.bench.running = None;
    let Some(fm) = app.bench.find_max.as_mut() else {
        return;
    };
    let Some(load) = fm.current.take() else {
        return;
    };
    let n = fm.search.probes.len();
    let r = match result {
        Ok(mut rs) if !rs.is_empty() => rs.remove(0),
        Ok(_) => {
            app.notify("find max: a probe returned no result", true);
            return;
        }
        Err(e) => {
            app.notify(format!("find max: probe {}: {e}", n + 1), true);
            return;
        }
    };
    if fm.stopped {
        let msg = format!("find max stopped after {n} probes; {}", fm.search.summary());
        app.notify(msg, true);
        return;
    }
    let p = judge(load, &r, &fm.search.slo);
    fm.search.probes.push(p);
    fm.results.push(r);
    match fm.search.next() {
        Some(next) => {
            let route = fm.route.clone();
            start_probe(app, fx, route, next);
        }
        None => {
            let missed = fm.search.answer().is_none();
            let msg = format!("find max: {}", fm.search.summary());
            app.notify(msg, missed);
        }
    }
}

pub(super) fn bench_done(
    app: &mut App,
    id: u64,
    result: Result<Vec<crate::bench::BenchResult>, String>,
    fx: &mut Vec<Effect>,
) {
    let Some(run) = app.bench.running.clone().filter(|r| r.id == id) else {
        return;
    };
    if searching(app) {
        probe_done(app, result, fx);
        return;
    }
    match result {
        Ok(rs) => {
            app.bench.results.extend(rs);
            match run.then {
                Some(next) => {
                    let plan = bench_plan(&app.bench.form);
                    launch(app, fx, next, plan, None);
                }
                None => {
                    app.bench.running = None;
                    if let Some(r) = app.bench.results.first() {
                        let bound = if r.client.bound {
                            " (client-bound: see the warnings)"
                        } else {
                            ""
                        };
                        let first = match r.error_samples.first() {
                            Some(e) if r.completed == 0 => format!(": {e}"),
                            _ => String::new(),
                        };
                        app.notify(
                            format!(
                                "load test done: {} ok, {} failed{bound}{first}",
                                r.completed, r.failed
                            ),
                            r.client.bound || r.failed > 0,
                        );
                    }
                }
            }
        }
        Err(e) => {
            app.bench.running = None;
            app.notify(format!("load test: {e}"), true);
        }
    }
}
