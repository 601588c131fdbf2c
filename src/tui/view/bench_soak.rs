//! The Bench pane's soak panel: each window as it closes, with the drift of its figures from
//! the first, and when the run is over the verdict (green or red, with the rule that failed).
use super::common::*;
use crate::bench::soak::{Verdict, Window};
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// Draws the panel under the charts when a soak run has windows; the area left for them.
pub fn split(f: &mut Frame, app: &App, area: Rect) -> Rect {
    let (windows, verdict): (&[Window], Option<&Verdict>) =
        match (&app.bench.running, app.bench.results.first()) {
            (Some(r), _) => (&r.progress.soak, None),
            (None, Some(res)) => match &res.soak {
                Some(s) => (&s.windows, Some(&s.verdict)),
                None => (&[], None),
            },
            _ => (&[], None),
        };
    if windows.is_empty() && verdict.is_none() {
        return area;
    }
    let rows = (windows.len().min(8) + 3 + usize::from(verdict.is_some())) as u16;
    let [top, bottom] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(rows.min(area.height / 2)),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(lines(windows, verdict)).block(Block::bordered().title(Span::styled(
            " Soak · windows and drift from the first ",
            title_style(),
        ))),
        bottom,
    );
    top
}

fn pct(now: Option<f64>, then: Option<f64>) -> String {
    match (now, then) {
        (Some(n), Some(t)) if t > 0.0 => format!("{:+.0}%", (n / t - 1.0) * 100.0),
        _ => "-".into(),
    }
}

fn lines(windows: &[Window], verdict: Option<&Verdict>) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled(
        format!(
            "{:>3} {:>9} {:>5} {:>3} {:>5} {:>8} {:>5} {:>9} {:>5} {:>8} {:>7}",
            "WIN", "SECONDS", "OK", "ERR", "EMPTY", "TOK/S", "Δ", "TTFT P99", "Δ", "RSS", "ΔMIB"
        ),
        dim(),
    ))];
    let first = windows.first();
    let skip = windows.len().saturating_sub(8);
    for w in windows.iter().skip(skip) {
        let rss = w.memory.as_ref().and_then(|m| m.rss_bytes);
        let rss0 = first.and_then(|f| f.memory.as_ref()?.rss_bytes);
        let bad = w.failed > 0 || w.empty_answers > 0;
        out.push(Line::from(Span::styled(
            format!(
                "{:>3} {:>9} {:>5} {:>3} {:>5} {:>8.1} {:>5} {:>9} {:>5} {:>8} {:>7}",
                w.index,
                format!("{:.0}-{:.0}", w.start_s, w.end_s),
                w.completed,
                w.failed,
                w.empty_answers,
                w.output_tokens_per_s,
                pct(
                    Some(w.output_tokens_per_s),
                    first.map(|f| f.output_tokens_per_s)
                ),
                w.ttft_p99_ms
                    .map(crate::format::ms)
                    .unwrap_or_else(|| "-".into()),
                pct(w.ttft_p99_ms, first.and_then(|f| f.ttft_p99_ms)),
                rss.map(crate::format::bytes).unwrap_or_else(|| "-".into()),
                match (rss, rss0) {
                    (Some(a), Some(b)) => format!("{:+.1}", (a as f64 - b as f64) / 1048576.0),
                    _ => "-".into(),
                }
            ),
            if bad { error_style() } else { Style::new() },
        )));
    }
    if let Some(v) = verdict {
        out.push(Line::from(Span::styled(
            v.line(),
            Style::new().fg(if v.pass { Color::Green } else { Color::Red }),
        )));
    }
    out
}
