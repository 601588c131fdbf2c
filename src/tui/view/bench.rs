//! Bench: the scenario form, the live run (TTFT and E2EL percentiles over time, throughput,
//! concurrency, errors, latency histogram), and the result with its comparison.
use super::bench_charts::{charts, compare_charts};
use super::common::*;
use crate::bench::result::BenchResult;
use crate::bench::Progress;
use crate::format;
use crate::tui::app::{App, BenchForm, FindMaxRun, RunningBench, Typing, BENCH_FIELDS};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let left_w = if area.width >= 100 { 38 } else { 30 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(20)]).areas(area);
    let [form_area, live_area] = Layout::vertical([
        Constraint::Length(BENCH_FIELDS.len() as u16 + 2),
        Constraint::Min(3),
    ])
    .areas(left);
    form(f, app, form_area);
    live(f, app, live_area);
    if let Some(fm) = &app.bench.find_max {
        super::bench_find_max::render(f, fm, app.bench.running.as_ref(), right);
        return;
    }
    let right = super::bench_soak::split(f, app, right);
    match (&app.bench.running, app.bench.results.first()) {
        (Some(r), _) => charts(f, &r.progress, right),
        (None, Some(res)) => result(f, app, res, right),
        (None, None) => f.render_widget(
            Paragraph::new(vec![
                Line::from("Pick the route and the load on the left (↑↓ field, ←→ or +/- change, enter edits), then r runs it."),
                Line::from("Esc stops a run; + and - change its concurrency (or rate) while it runs."),
                Line::from("Figures follow vllm bench serve: TTFT, TPOT, ITL, E2EL, throughput, goodput."),
                Line::from("Mode find max probes load after load for the highest that meets the SLO (vllm bench sweep serve_sla)."),
            ])
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Load test ", title_style()))),
            right,
        ),
    }
}

fn field_value(app: &App, f: &BenchForm, i: usize) -> String {
    let route = |k: usize| {
        app.chat
            .routes
            .get(k)
            .cloned()
            .unwrap_or_else(|| "-".into())
    };
    match i {
        8 => crate::tui::app::WORKLOADS[f.workload % crate::tui::app::WORKLOADS.len()].into(),
        0 => route(f.route),
        1 => match (f.open, f.ramp) {
            (true, true) => "open, ramp-up".into(),
            (true, false) => "open, Poisson".into(),
            _ => "closed loop".into(),
        },
        2 if f.open && f.ramp && !f.find_max => {
            format!("{} → {} req/s", format::trim_float(f.rate.min(1.0)), f.rate)
        }
        9 if f.find_max => "find max".into(),
        9 if f.soak => format!("soak, {} s windows", f.soak_window_s()),
        9 => "single run".into(),
        10 => f.slo.clone(),
        2 if f.find_max => "by the search".into(),
        2 if f.open => format!("{} req/s", f.rate),
        2 => format!("{} in flight", f.concurrency),
        3 => {
            if f.by_duration {
                "duration".into()
            } else {
                "requests".into()
            }
        }
        4 if f.by_duration => format!("{} s", f.duration_s),
        4 => f.requests.to_string(),
        5 => f.input_len.to_string(),
        6 => f.output_len.to_string(),
        _ => f.compare.map(route).unwrap_or_else(|| "none".into()),
    }
}

fn form(f: &mut Frame, app: &App, area: Rect) {
    let fm = &app.bench.form;
    let lines: Vec<Line> = BENCH_FIELDS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let value = match &app.typing {
                Typing::BenchField(fi, buf) if *fi == i => format!("{buf}▏"),
                _ => field_value(app, fm, i),
            };
            let st = if i == app.bench.field {
                selected()
            } else {
                Style::new()
            };
            let label = match (i, fm.open, fm.by_duration) {
                (2, true, _) => "rate",
                (2, false, _) => "concurrency",
                (4, _, true) => "duration",
                (4, _, false) => "requests",
                _ => name,
            };
            let width = usize::from(area.width.saturating_sub(16)).max(8);
            Line::from(vec![
                Span::styled(format!("{label:>13} "), dim()),
                Span::styled(format::clip(&value, width), st),
            ])
        })
        .collect();
    let title = if app.read_only {
        " Scenario · read-only "
    } else {
        " Scenario · r runs "
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, title_style()))),
        area,
    );
}

fn live(f: &mut Frame, app: &App, area: Rect) {
    let mut lines = Vec::new();
    if let Some(fm) = &app.bench.find_max {
        lines.extend(search_lines(fm));
    }
    if let Some(r) = &app.bench.running {
        lines.extend(running_lines(r));
    } else if app.bench.find_max.is_some() {
        // The search's lines above say it all.
    } else if let Some(res) = app.bench.results.first() {
        lines.push(Line::from(format!(
            "done: {} ok, {} failed, {:.1} s",
            res.completed, res.failed, res.duration
        )));
        lines.push(Line::from(Span::styled(
            "w saves JSON · b keeps it as baseline",
            dim(),
        )));
        if let Some(b) = &app.bench.baseline {
            lines.push(Line::from(Span::styled(
                format!("baseline: {} {}", b.label, b.date),
                dim(),
            )));
        }
    } else {
        lines.push(Line::from(Span::styled("idle", dim())));
    }
    if app.bench.running.is_none() {
        lines.extend(route_down(app));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Run ", title_style()))),
        area,
    );
}

/// A find-max search: its probe, the SLO, and the answer once it ends.
fn search_lines(fm: &FindMaxRun) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let name = fm.search.knob.name();
    let head = match fm.current {
        Some(load) => format!(
            "find max · probe {} · {name} {}",
            fm.search.probes.len() + 1,
            format::trim_float(load)
        ),
        None if fm.stopped => format!("find max stopped · {} probes", fm.search.probes.len()),
        None => format!("find max done · {} probes", fm.search.probes.len()),
    };
    lines.push(Line::from(Span::styled(
        head,
        Style::new().fg(Color::Yellow),
    )));
    let slo: Vec<String> = fm
        .search
        .slo
        .iter()
        .map(|l| format!("{}<={}", l.metric, format::trim_float(l.max)))
        .collect();
    lines.push(Line::from(Span::styled(
        format!("SLO {}", slo.join(",")),
        dim(),
    )));
    if fm.current.is_none() {
        let answer = match fm.search.answer() {
            Some(a) => Span::styled(
                format!("answer: {name} {}", format::trim_float(a)),
                Style::new().fg(Color::Green),
            ),
            None => Span::styled(format!("no {name} meets it"), error_style()),
        };
        lines.push(Line::from(answer));
    }
    lines
}

/// A run in progress: its phase and count, load, throughput, latencies and errors.
fn running_lines(r: &RunningBench) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let p = &r.progress;
    let planned = match (p.planned_requests, p.planned_duration_s) {
        (Some(n), _) => format!("{}/{n}", p.completed + p.failed),
        (None, Some(d)) => format!("{:.0}/{d:.0} s", p.elapsed_s.min(d)),
        _ => "-".into(),
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!("{:?} ", p.phase).to_lowercase(),
            Style::new().fg(Color::Yellow),
        ),
        Span::raw(format!("{} · {planned}", r.route)),
    ]));
    lines.push(Line::from(format!(
        "{:.1} s · {} in flight · {}",
        p.elapsed_s,
        p.in_flight,
        load_text(p)
    )));
    lines.push(Line::from(format!(
        "{:.2} req/s · {:.0} tok/s",
        p.requests_per_s, p.output_tokens_per_s
    )));
    lines.push(Line::from(format!(
        "TTFT p50 {} p99 {}",
        format::opt(p.ttft_p50_ms, format::ms),
        format::opt(p.ttft_p99_ms, format::ms)
    )));
    lines.push(Line::from(format!(
        "E2EL p50 {} p99 {}",
        format::opt(p.e2el_p50_ms, format::ms),
        format::opt(p.e2el_p99_ms, format::ms)
    )));
    let errs: u64 = p.errors.values().sum();
    let detail: Vec<String> = p.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    lines.push(Line::from(Span::styled(
        format!("{errs} errors {}", detail.join(" ")),
        if errs > 0 { error_style() } else { dim() },
    )));
    if let Some(t) = &r.then {
        lines.push(Line::from(Span::styled(
            format!("then the same on {t}"),
            dim(),
        )));
    }
    lines
}

/// A load test has no fallback: say before the run that the route will not answer.
fn route_down(app: &App) -> Option<Line<'static>> {
    let name = app.chat.routes.get(app.bench.form.route);
    let r =
        app.routes.table.routes.iter().find(|r| {
            Some(&r.route) == name && r.state() == crate::telemetry::routes::Health::Down
        })?;
    let why = r
        .targets
        .iter()
        .find_map(|t| t.last_error.clone())
        .unwrap_or_default();
    Some(Line::from(Span::styled(
        format!("{} is down: {why}", r.route),
        error_style(),
    )))
}

fn load_text(p: &Progress) -> String {
    match (p.rate, p.concurrency) {
        (Some(r), Some(c)) => format!("{r:.1} req/s, max {c}"),
        (Some(r), None) => format!("{r:.1} req/s"),
        (None, Some(c)) => format!("concurrency {c}"),
        _ => String::new(),
    }
}
fn row(label: &str, a: f64, b: Option<f64>, lower_better: bool) -> Line<'static> {
    // Counts read as counts; latencies and rates always with two decimals.
    let count = label.ends_with("requests");
    let num = |x: f64| {
        if !x.is_finite() {
            "-".to_string()
        } else if count {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    let mut spans = vec![
        Span::styled(format!("{label:<26}"), dim()),
        Span::raw(format!("{:>10}", num(a))),
    ];
    if let Some(b) = b {
        let ratio = if a.abs() > 1e-12 { b / a } else { f64::NAN };
        let better = (ratio < 1.0) == lower_better;
        let style = if !ratio.is_finite() || (ratio - 1.0).abs() < 0.02 {
            Style::new()
        } else if better {
            Style::new().fg(Color::Green)
        } else {
            Style::new().fg(Color::Red)
        };
        spans.push(Span::raw(format!("{:>12}", num(b))));
        spans.push(Span::styled(
            if ratio.is_finite() {
                format!("{ratio:>8.2}x")
            } else {
                "       -".into()
            },
            style,
        ));
    }
    Line::from(spans)
}

fn result(f: &mut Frame, app: &App, a: &BenchResult, area: Rect) {
    // The second column: the compared route, else the baseline.
    let other = app.bench.results.get(1).or(app.bench.baseline.as_ref());
    let mut lines = figures(a, other);
    lines.extend(per_turn(a));
    lines.extend(notes(a));
    let [table, hist] = Layout::vertical([
        Constraint::Length(lines.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(Span::styled(" Result ", title_style()))),
        table,
    );
    if hist.height >= 5 {
        compare_charts(f, a, other, hist);
    }
}

/// The figures side by side: this run (A, green), the compared route or the baseline (B,
/// cyan), and B/A.
fn figures(a: &BenchResult, other: Option<&BenchResult>) -> Vec<Line<'static>> {
    let mut lines = vec![];
    // A in green and B in cyan, as in the charts under the table.
    let mut head = vec![
        Span::raw(format!("{:<26}", "")),
        Span::styled(
            format!("{:>10}", format::clip(&a.label, 10)),
            title_style().fg(Color::Green),
        ),
    ];
    if let Some(b) = other {
        head.push(Span::styled(
            format!("{:>12}", format::clip(&b.label, 12)),
            title_style().fg(Color::Cyan),
        ));
        head.push(Span::styled(format!("{:>9}", "B/A"), title_style()));
    }
    lines.push(Line::from(head));
    let o = |g: &dyn Fn(&BenchResult) -> f64| other.map(g);
    lines.push(row(
        "successful requests",
        a.completed as f64,
        o(&|r| r.completed as f64),
        false,
    ));
    lines.push(row(
        "failed requests",
        a.failed as f64,
        o(&|r| r.failed as f64),
        true,
    ));
    lines.push(row(
        "request throughput /s",
        a.request_throughput,
        o(&|r| r.request_throughput),
        false,
    ));
    lines.push(row(
        "output tokens /s",
        a.output_throughput,
        o(&|r| r.output_throughput),
        false,
    ));
    for (name, get) in [
        (
            "TTFT",
            &(|r: &BenchResult| r.ttft) as &dyn Fn(&BenchResult) -> crate::bench::recorder::Stats,
        ),
        ("TPOT", &|r: &BenchResult| r.tpot),
        ("ITL", &|r: &BenchResult| r.itl),
        ("E2EL", &|r: &BenchResult| r.e2el),
    ] {
        // With no successful request there is no latency to show, not a latency of zero.
        let pick = |r: &BenchResult, v: f64| if r.completed == 0 { f64::NAN } else { v };
        lines.push(row(
            &format!("{name} median ms"),
            pick(a, get(a).median),
            other.map(|b| pick(b, get(b).median)),
            true,
        ));
        lines.push(row(
            &format!("{name} p99 ms"),
            pick(a, get(a).p99),
            other.map(|b| pick(b, get(b).p99)),
            true,
        ));
    }
    lines
}

/// What the growing history of a multi-turn run costs: each turn's prompt and latency.
fn per_turn(a: &BenchResult) -> Vec<Line<'static>> {
    let mut lines = vec![];
    if a.per_turn.is_empty() {
        return lines;
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{:<6}{:>12}{:>11}{:>10}{:>11}",
            "turn", "prompt tok", "TTFT p50", "p99", "E2EL p50"
        ),
        title_style(),
    )));
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
    for t in a.per_turn.iter().take(8) {
        lines.push(Line::from(format!(
            "{:<6}{:>12}{:>11}{:>10}{:>11}",
            t.turn,
            f(t.mean_prompt_tokens, 0),
            f(t.ttft_p50_ms, 1),
            f(t.ttft_p99_ms, 1),
            f(t.e2el_p50_ms, 1)
        )));
    }
    lines
}

/// Errors by class with the first message, and warnings about the prompts and the client.
fn notes(a: &BenchResult) -> Vec<Line<'static>> {
    let mut lines = vec![];
    if !a.errors.is_empty() {
        let e: Vec<String> = a.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        lines.push(Line::from(Span::styled(
            format!("errors: {}", e.join(", ")),
            error_style(),
        )));
        if let Some(first) = a.error_samples.first() {
            lines.push(Line::from(Span::styled(
                format!("first: {first}"),
                error_style(),
            )));
        }
    }
    if let Some(w) = a.prompt_tokens.as_ref().and_then(|p| p.warning.as_ref()) {
        lines.push(Line::from(Span::styled(
            format!("prompts: {w}"),
            Style::new().fg(Color::Yellow),
        )));
    }
    for w in &a.client.warnings {
        lines.push(Line::from(Span::styled(
            format!("client-bound: {w}"),
            Style::new().fg(Color::Yellow),
        )));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "client: dispatch lag p99 {:.2} ms, CPU {:.0}% of one core",
            a.client.dispatch_lag.p99, a.client.cpu_pct
        ),
        dim(),
    )));
    lines
}
