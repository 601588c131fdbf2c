//! The Bench pane's charts: latency percentiles, throughput, concurrency, errors, and the
//! latency histogram.
use super::common::*;
use crate::bench::result::{BenchResult, Series};
use crate::bench::server_metrics::ServerSeries;
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
    // The server's view goes under the client's, on the same seconds.
    let area = match p.server.as_ref().filter(|v| !v.is_empty()) {
        Some(server) if area.height >= 16 => {
            let [client, below] =
                Layout::vertical([Constraint::Percentage(62), Constraint::Percentage(38)])
                    .areas(area);
            server_charts(f, server, off, x0, x1, below);
            client
        }
        _ => area,
    };
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
    let [tok_area, sent_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(rows[i]);
    f.render_widget(
        Sparkline::default()
            .data(&toks)
            .style(Style::new().fg(Color::Cyan))
            .block(Block::bordered().title(format!(" output tok/s (peak {peak}) "))),
        tok_area,
    );
    // The rate actually achieved: what an open loop or a ramp-up really sent each second.
    let sent: Vec<u64> = s.sent.iter().map(|v| u64::from(*v)).collect();
    let last_full = sent.len().checked_sub(2).and_then(|i| sent.get(i)).copied();
    f.render_widget(
        Sparkline::default()
            .data(&sent)
            .style(Style::new().fg(Color::Yellow))
            .block(Block::bordered().title(match (last_full, p.rate) {
                (Some(n), Some(r)) => {
                    format!(" sent/s ({n}, target {}) ", crate::format::trim_float(r))
                }
                (Some(n), None) => format!(" sent/s ({n}) "),
                _ => " sent/s ".to_string(),
            })),
        sent_area,
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

fn line_chart<'a>(
    title: Line<'a>,
    sets: Vec<Dataset<'a>>,
    ymax: f64,
    unit: &str,
    x0: f64,
    x1: f64,
) -> Chart<'a> {
    Chart::new(sets)
        .block(Block::bordered().title(title))
        .x_axis(Axis::default().bounds([x0, x1.max(x0 + 1.0)]))
        .y_axis(
            Axis::default()
                .bounds([0.0, ymax])
                .labels([Line::from("0"), Line::from(format!("{ymax:.0}{unit}"))]),
        )
}

/// vLLM's queue (running, waiting), KV-cache use with preemptions and prefix-cache hits, and
/// its own generation tok/s.
fn server_charts(f: &mut Frame, v: &ServerSeries, off: usize, x0: f64, x1: f64, area: Rect) {
    let [queue, cache, gen] = Layout::vertical([
        Constraint::Percentage(45),
        Constraint::Percentage(35),
        Constraint::Min(3),
    ])
    .areas(area);
    let running = points(&v.running, off);
    let waiting = points(&v.waiting, off);
    let top = |pts: &[&[(f64, f64)]]| {
        pts.iter()
            .flat_map(|p| p.iter().map(|x| x.1))
            .fold(1.0, f64::max)
    };
    let now = |xs: &[Option<f64>]| xs.iter().rev().find_map(|x| *x);
    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
    let ymax = top(&[&running, &waiting]).ceil() * 1.2;
    f.render_widget(
        line_chart(
            Line::from(vec![
                Span::styled(" vLLM requests: ", title_style()),
                Span::styled(
                    format!("running {} ", fmt(now(&v.running))),
                    Style::new().fg(Color::Green),
                ),
                Span::styled(
                    format!("waiting {} ", fmt(now(&v.waiting))),
                    Style::new().fg(Color::Yellow),
                ),
            ]),
            vec![
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(Color::Green))
                    .data(&running),
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(Color::Yellow))
                    .data(&waiting),
            ],
            ymax,
            "",
            x0,
            x1,
        ),
        queue,
    );
    let kv = points(&v.kv_cache_pct, off);
    let hits = now(&v.prefix_cache_hit_rate)
        .map(|h| format!(" · prefix hits {:.0}%", h * 100.0))
        .unwrap_or_default();
    f.render_widget(
        line_chart(
            Line::from(Span::styled(
                format!(
                    " KV cache {}% · preemptions {}{hits} ",
                    now(&v.kv_cache_pct).map_or("-".to_string(), |k| format!("{k:.1}")),
                    fmt(now(&v.preemptions)),
                ),
                title_style(),
            )),
            vec![Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Magenta))
                .data(&kv)],
            100.0,
            "%",
            x0,
            x1,
        ),
        cache,
    );
    let toks: Vec<u64> = v
        .generation_tokens_per_s
        .iter()
        .map(|x| x.unwrap_or(0.0).round() as u64)
        .collect();
    f.render_widget(
        Sparkline::default()
            .data(&toks)
            .style(Style::new().fg(Color::Cyan))
            .block(Block::bordered().title(format!(
                " server generation tok/s ({} now) ",
                fmt(now(&v.generation_tokens_per_s))
            ))),
        gen,
    );
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

/// A finished run beside the compared route or the baseline, on the seconds since each run's
/// start: client TTFT p99, and, where the servers export them, vLLM's running requests and
/// KV-cache use (A in green, B in cyan, as in the table's header).
pub(super) fn compare_charts(f: &mut Frame, a: &BenchResult, b: Option<&BenchResult>, area: Rect) {
    let server = |r: &BenchResult| {
        r.server_metrics
            .as_ref()
            .filter(|m| !m.samples.is_empty())
            .map(|m| ServerSeries::from_samples(&m.samples, 0))
    };
    let (sa, sb) = (server(a), b.and_then(server));
    let with_server = sa.is_some() || sb.is_some();
    let cells = if with_server {
        Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(area)
    } else {
        Layout::horizontal([Constraint::Percentage(100)]).split(area)
    };
    let secs = |r: &BenchResult| r.series.completed.len();
    let x1 = [
        secs(a),
        b.map_or(0, secs),
        sa.as_ref().map_or(0, ServerSeries::len),
        sb.as_ref().map_or(0, ServerSeries::len),
    ]
    .into_iter()
    .fold(1, usize::max) as f64;
    let title = |what: &str| Line::from(Span::styled(format!(" {what} "), title_style()));
    let top = |p: &Pair| p.0.iter().chain(&p.1).map(|x| x.1).fold(1.0, f64::max) * 1.15;
    let ttft: Pair = (
        points(&a.series.ttft_p99_ms, 0),
        b.map(|b| points(&b.series.ttft_p99_ms, 0))
            .unwrap_or_default(),
    );
    f.render_widget(
        line_chart(
            title("TTFT p99 (ms)"),
            pair_sets(&ttft),
            top(&ttft),
            " ms",
            0.0,
            x1,
        ),
        cells[0],
    );
    if !with_server {
        return;
    }
    let of = |s: &Option<ServerSeries>, get: fn(&ServerSeries) -> &Vec<Option<f64>>| {
        s.as_ref().map(|s| points(get(s), 0)).unwrap_or_default()
    };
    let running: Pair = (of(&sa, |s| &s.running), of(&sb, |s| &s.running));
    f.render_widget(
        line_chart(
            title("vLLM running"),
            pair_sets(&running),
            top(&running).ceil(),
            "",
            0.0,
            x1,
        ),
        cells[1],
    );
    let kv: Pair = (of(&sa, |s| &s.kv_cache_pct), of(&sb, |s| &s.kv_cache_pct));
    f.render_widget(
        line_chart(title("KV cache %"), pair_sets(&kv), 100.0, "%", 0.0, x1),
        cells[2],
    );
}

/// Run A's points and run B's.
type Pair = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// A in green, B in cyan, as the result table's header names them.
fn pair_sets(p: &Pair) -> Vec<Dataset<'_>> {
    vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(&p.0),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&p.1),
    ]
}
