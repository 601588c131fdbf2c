//! The Bench pane's charts: latency percentiles, throughput, concurrency, errors, and the
//! latency histogram.
use super::common::*;
use crate::bench::result::Series;
use crate::bench::Progress;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Block, Chart, Dataset, GraphType, Paragraph, Sparkline,
};
use ratatui::Frame;

pub(super) fn points(v: &[Option<f64>], offset: usize) -> Vec<(f64, f64)> {
    v.iter()
        .enumerate()
        .filter_map(|(i, x)| x.map(|y| ((offset + i) as f64, y)))
        .collect()
}

pub(super) fn latency_chart<'a>(
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

pub(super) fn charts(f: &mut Frame, p: &Progress, area: Rect) {
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

pub(super) fn histogram(f: &mut Frame, bins: &[(f64, u64)], area: Rect) {
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
