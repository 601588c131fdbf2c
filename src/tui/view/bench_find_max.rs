//! The Bench pane in find-max mode: each SLO metric against the load, one point per probe
//! (met in green, missed in red, the probe running now in yellow from its live percentiles)
//! with the limit drawn across, over the running probe's own charts or the list of probes.
use super::bench_charts::charts;
use super::common::*;
use crate::bench::find_max::{Knob, Limit};
use crate::bench::Progress;
use crate::format;
use crate::tui::app::{FindMaxRun, RunningBench};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

pub(super) fn render(f: &mut Frame, fm: &FindMaxRun, running: Option<&RunningBench>, area: Rect) {
    let limits = &fm.search.slo;
    let curve_h = (area.height * 45 / 100).max(8).min(area.height);
    let [curves, below] =
        Layout::vertical([Constraint::Length(curve_h), Constraint::Min(0)]).areas(area);
    let live = running.map(|r| &r.progress);
    let cells = Layout::horizontal(vec![
        Constraint::Ratio(1, limits.len().max(1) as u32);
        limits.len()
    ])
    .split(curves);
    for (i, limit) in limits.iter().enumerate() {
        curve(f, fm, i, limit, live, cells[i]);
    }
    match running {
        Some(r) if below.height >= 8 => charts(f, &r.progress, below),
        _ => probes(f, fm, below),
    }
}

/// A probe's live value of `metric`, where the live progress has it.
fn live_value(p: &Progress, metric: &str) -> Option<f64> {
    match metric {
        "p99_ttft_ms" => p.ttft_p99_ms,
        "median_ttft_ms" => p.ttft_p50_ms,
        "p99_e2el_ms" => p.e2el_p99_ms,
        "median_e2el_ms" => p.e2el_p50_ms,
        _ => None,
    }
}

fn curve(
    f: &mut Frame,
    fm: &FindMaxRun,
    i: usize,
    limit: &Limit,
    live: Option<&Progress>,
    area: Rect,
) {
    let probes = &fm.search.probes;
    let point =
        |p: &crate::bench::find_max::Probe| p.values.get(i).and_then(|v| v.1).map(|v| (p.load, v));
    let mut line: Vec<(f64, f64)> = probes.iter().filter_map(point).collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    let met: Vec<(f64, f64)> = probes.iter().filter(|p| p.ok).filter_map(point).collect();
    let missed: Vec<(f64, f64)> = probes.iter().filter(|p| !p.ok).filter_map(point).collect();
    let now: Vec<(f64, f64)> = fm
        .current
        .zip(live.and_then(|p| live_value(p, &limit.metric)))
        .into_iter()
        .collect();
    let xmax = probes
        .iter()
        .map(|p| p.load)
        .chain(fm.current)
        .fold(1.0, f64::max)
        * 1.1;
    let ymax = line
        .iter()
        .chain(&now)
        .map(|p| p.1)
        .fold(limit.max * 1.25, f64::max)
        * 1.05;
    let slo_line = [(0.0, limit.max), (xmax, limit.max)];
    let (lo, hi) = fm.search.bracket();
    let status = match (lo, hi) {
        (Some(l), Some(h)) => format!(
            "meets at {}, misses at {}",
            format::trim_float(l),
            format::trim_float(h)
        ),
        (Some(l), None) => format!("meets up to {}", format::trim_float(l)),
        (None, Some(h)) => format!("misses at {}", format::trim_float(h)),
        (None, None) => "first probe".into(),
    };
    let x_name = match fm.search.knob {
        Knob::Rate => "req/s",
        Knob::Concurrency => "concurrency",
    };
    let sets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Yellow))
            .data(&slo_line),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&line),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Green))
            .data(&met),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Red))
            .data(&missed),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Yellow))
            .data(&now),
    ];
    let title = Line::from(vec![
        Span::styled(
            format!(" {} ≤ {} ", limit.metric, format::trim_float(limit.max)),
            title_style(),
        ),
        Span::styled(format!("· {status} "), dim()),
    ]);
    f.render_widget(
        Chart::new(sets)
            .block(Block::bordered().title(title))
            .x_axis(Axis::default().bounds([0.0, xmax]).labels([
                Line::from("0"),
                Line::from(format!("{} {x_name}", format::trim_float(xmax / 1.1))),
            ]))
            .y_axis(
                Axis::default()
                    .bounds([0.0, ymax])
                    .labels([Line::from("0"), Line::from(format!("{ymax:.0} ms"))]),
            ),
        area,
    );
}

/// Every probe in a table (load, verdict, each SLO metric, requests, throughput), and the
/// answer once the search is over.
fn probes(f: &mut Frame, fm: &FindMaxRun, area: Rect) {
    let load = match fm.search.knob {
        Knob::Rate => "RATE",
        Knob::Concurrency => "CONC",
    };
    let mut head = format!("{:>2}  {load:>7}  {:<7}", "#", "RESULT");
    for l in &fm.search.slo {
        head.push_str(&format!("{:>16}", format::clip(&l.metric, 15)));
    }
    head.push_str(&format!("{:>7}{:>7}{:>9}", "OK", "FAILED", "REQ/S"));
    let mut lines = vec![Line::from(Span::styled(head, title_style()))];
    for (n, p) in fm.search.probes.iter().enumerate() {
        let mut row = format!(
            "{:>2}  {:>7}  {:<7}",
            n + 1,
            format::trim_float(p.load),
            if p.ok { "meets" } else { "misses" }
        );
        for (_, v) in &p.values {
            row.push_str(&format!(
                "{:>16}",
                v.map_or("-".to_string(), |v| format!("{v:.1}"))
            ));
        }
        row.push_str(&format!(
            "{:>7}{:>7}{:>9.2}",
            p.completed, p.failed, p.request_throughput
        ));
        lines.push(Line::from(Span::styled(
            row,
            Style::new().fg(if p.ok { Color::Green } else { Color::Red }),
        )));
    }
    if fm.current.is_none() {
        let head = if fm.stopped { "stopped: " } else { "" };
        lines.push(Line::from(Span::styled(
            format!("{head}{}", fm.search.summary()),
            title_style(),
        )));
        lines.push(Line::from(Span::styled(
            "w saves every probe as JSON",
            dim(),
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(
                format!(" Probes on {} ", fm.route),
                title_style(),
            ))),
        area,
    );
}
