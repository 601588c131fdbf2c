//! Bench: the scenario form, the live run (TTFT and E2EL percentiles over time, throughput,
//! concurrency, errors, latency histogram), and the result with its comparison.
use super::common::*;
use crate::bench::result::{BenchResult, Series};
use crate::bench::Progress;
use crate::format;
use crate::tui::app::{App, BenchForm, Typing, BENCH_FIELDS};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Block, Chart, Dataset, GraphType, Paragraph, Sparkline, Wrap,
};
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
    match (&app.bench.running, app.bench.results.first()) {
        (Some(r), _) => charts(f, &r.progress, right),
        (None, Some(res)) => result(f, app, res, right),
        (None, None) => f.render_widget(
            Paragraph::new(vec![
                Line::from("Pick the route and the load on the left (↑↓ field, ←→ or +/- change, enter edits), then r runs it."),
                Line::from("Esc stops a run; + and - change its concurrency (or rate) while it runs."),
                Line::from("Figures follow vllm bench serve: TTFT, TPOT, ITL, E2EL, throughput, goodput."),
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
        0 => route(f.route),
        1 => {
            if f.open {
                "open, Poisson".into()
            } else {
                "closed loop".into()
            }
        }
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
    if let Some(r) = &app.bench.running {
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
        // A load test has no fallback: say before the run that the route will not answer.
        let name = app.chat.routes.get(app.bench.form.route);
        let down = app.routes.table.routes.iter().find(|r| {
            Some(&r.route) == name && r.state() == crate::telemetry::routes::Health::Down
        });
        if let Some(r) = down {
            let why = r
                .targets
                .iter()
                .find_map(|t| t.last_error.clone())
                .unwrap_or_default();
            lines.push(Line::from(Span::styled(
                format!("{} is down: {why}", r.route),
                error_style(),
            )));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Run ", title_style()))),
        area,
    );
}

fn load_text(p: &Progress) -> String {
    match (p.rate, p.concurrency) {
        (Some(r), Some(c)) => format!("{r:.1} req/s, max {c}"),
        (Some(r), None) => format!("{r:.1} req/s"),
        (None, Some(c)) => format!("concurrency {c}"),
        _ => String::new(),
    }
}

fn points(v: &[Option<f64>], offset: usize) -> Vec<(f64, f64)> {
    v.iter()
        .enumerate()
        .filter_map(|(i, x)| x.map(|y| ((offset + i) as f64, y)))
        .collect()
}

fn latency_chart<'a>(
    title: &'a str,
    p50: &'a [(f64, f64)],
    p99: &'a [(f64, f64)],
    x0: f64,
    x1: f64,
) -> Chart<'a> {
    let ymax = p99.iter().chain(p50).map(|p| p.1).fold(1.0, f64::max) * 1.1;
    Chart::new(vec![
        Dataset::default()
            .name("p50")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(p50),
        Dataset::default()
            .name("p99")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Red))
            .data(p99),
    ])
    .block(Block::bordered().title(Span::styled(title, title_style())))
    .x_axis(Axis::default().bounds([x0, x1.max(x0 + 1.0)]).labels([
        Line::from(format!("{x0:.0}s")),
        Line::from(format!("{x1:.0}s")),
    ]))
    .y_axis(
        Axis::default()
            .bounds([0.0, ymax])
            .labels([Line::from("0"), Line::from(format!("{ymax:.0} ms"))]),
    )
}

fn charts(f: &mut Frame, p: &Progress, area: Rect) {
    let s: &Series = &p.series;
    let off = p.series_offset;
    let x0 = off as f64;
    let x1 = (off + s.completed.len().max(1)) as f64;
    let tall = area.height >= 24;
    let rows = if tall {
        Layout::vertical([
            Constraint::Percentage(30),
            Constraint::Percentage(30),
            Constraint::Length(3),
            Constraint::Length(3),
            Constraint::Min(4),
        ])
        .split(area)
    } else {
        Layout::vertical([
            Constraint::Percentage(50),
            Constraint::Length(3),
            Constraint::Length(3),
            Constraint::Min(3),
        ])
        .split(area)
    };
    let ttft50 = points(&s.ttft_p50_ms, off);
    let ttft99 = points(&s.ttft_p99_ms, off);
    let e50 = points(&s.e2el_p50_ms, off);
    let e99 = points(&s.e2el_p99_ms, off);
    let mut i = 0;
    f.render_widget(
        latency_chart(" TTFT p50/p99 (ms) ", &ttft50, &ttft99, x0, x1),
        rows[i],
    );
    i += 1;
    if tall {
        f.render_widget(
            latency_chart(" E2EL p50/p99 (ms) ", &e50, &e99, x0, x1),
            rows[i],
        );
        i += 1;
    }
    let toks: Vec<u64> = s
        .output_tokens_per_s
        .iter()
        .map(|v| v.round() as u64)
        .collect();
    let peak = toks.iter().copied().max().unwrap_or(0);
    f.render_widget(
        Sparkline::default()
            .data(&toks)
            .style(Style::new().fg(Color::Cyan))
            .block(Block::bordered().title(format!(" output tok/s (peak {peak}) "))),
        rows[i],
    );
    i += 1;
    let conc: Vec<u64> = s.concurrency.iter().map(|v| v.round() as u64).collect();
    let errs: u64 = s.failed.iter().map(|v| u64::from(*v)).sum();
    let [c_area, e_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(rows[i]);
    f.render_widget(
        Sparkline::default()
            .data(&conc)
            .style(Style::new().fg(Color::Green))
            .block(Block::bordered().title(format!(" concurrency ({} now) ", p.in_flight))),
        c_area,
    );
    let err_series: Vec<u64> = s.failed.iter().map(|v| u64::from(*v)).collect();
    f.render_widget(
        Sparkline::default()
            .data(&err_series)
            .style(Style::new().fg(Color::Red))
            .block(Block::bordered().title(format!(" errors ({errs}) "))),
        e_area,
    );
    i += 1;
    histogram(f, &p.e2el_bins, rows[i]);
}

fn histogram(f: &mut Frame, bins: &[(f64, u64)], area: Rect) {
    let block = Block::bordered().title(" E2E latency histogram (upper bound, ms) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height < 2 || bins.is_empty() {
        return;
    }
    let bar_w = (inner.width / bins.len() as u16).max(2) - 1;
    let bars: Vec<Bar> = bins
        .iter()
        .map(|(_, c)| Bar::default().value(*c).text_value(String::new()))
        .collect();
    let [chart, axis] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(
        BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(bar_w)
            .bar_gap(1)
            .bar_style(Style::new().fg(Color::Magenta)),
        chart,
    );
    // ratatui cuts a bar's label to the bar's width, so the axis is drawn here: a bound
    // under its bar wherever it fits whole after the one before it.
    let fine = bins
        .windows(2)
        .any(|w| format!("{:.0}", w[0].0) == format!("{:.0}", w[1].0));
    let mut axis_text = String::new();
    for (i, (ub, _)) in bins.iter().enumerate() {
        let x = i * usize::from(bar_w + 1);
        let label = if fine {
            format!("{ub:.1}")
        } else {
            format!("{ub:.0}")
        };
        if x + label.len() > usize::from(axis.width) {
            break;
        }
        if x >= axis_text.chars().count() + usize::from(!axis_text.is_empty()) {
            let pad = x - axis_text.chars().count();
            axis_text.push_str(&" ".repeat(pad));
            axis_text.push_str(&label);
        }
    }
    f.render_widget(Paragraph::new(Span::styled(axis_text, dim())), axis);
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
    let mut lines = vec![];
    let head = match other {
        Some(b) => format!(
            "{:<26}{:>10}{:>12}{:>9}",
            "",
            format::clip(&a.label, 10),
            format::clip(&b.label, 12),
            "B/A"
        ),
        None => format!("{:<26}{:>10}", "", format::clip(&a.label, 10)),
    };
    lines.push(Line::from(Span::styled(head, title_style())));
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
        let t50 = points(&a.series.ttft_p50_ms, 0);
        let t99 = points(&a.series.ttft_p99_ms, 0);
        let secs = a.series.completed.len().max(1) as f64;
        f.render_widget(
            latency_chart(" TTFT p50/p99 over the run (ms) ", &t50, &t99, 0.0, secs),
            hist,
        );
    }
}
