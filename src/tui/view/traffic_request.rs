//! One request of the Traffic pane: its stage as the list shows it, and the detail opened on
//! it (who asked what, each attempt and its error, where the time went).
use super::common::*;
use crate::format;
use crate::traffic::Row as Req;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub(super) fn stage_style(stage: &str) -> Style {
    match stage {
        "done" => Style::new().fg(Color::Green),
        "error" => Style::new().fg(Color::Red),
        "cancelled" => Style::new().fg(Color::Yellow),
        "streaming" => Style::new().fg(Color::Cyan),
        _ => Style::new().fg(Color::Magenta),
    }
}

pub(super) fn stage_text(r: &Req) -> String {
    let s = match r.stage.as_str() {
        "waiting_headers" => "headers".to_string(),
        "waiting_first_token" => "first token".to_string(),
        "error" => format!("error {}", r.class.as_deref().unwrap_or("")),
        s => s.to_string(),
    };
    match r.attempt {
        Some((n, b)) if n > 1 && !r.finished() => format!("{s} {n}/{b}"),
        _ => s,
    }
}

/// One request opened: who asked what, the attempts with each error, where the time went.
pub(super) fn detail(f: &mut Frame, r: &Req, area: Rect) {
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("request {} ", r.id), title_style()),
            Span::raw(format!(
                "at {} · client {} · {} · model {}",
                clock_s(r.at_ms as f64 / 1000.0),
                r.client,
                r.dialect,
                r.model
            )),
        ]),
        Line::from(vec![
            Span::styled("stage ", dim()),
            Span::styled(stage_text(r), stage_style(&r.stage)),
            Span::raw(format!(
                " · status {} · served by {} {}",
                format::opt(r.status, |s| s.to_string()),
                r.served_by.as_deref().unwrap_or("-"),
                r.server.as_deref().unwrap_or("")
            )),
        ]),
        Line::from(vec![
            Span::styled("attempts ", dim()),
            Span::raw(if r.chain.is_empty() {
                "-".to_string()
            } else {
                r.chain.clone()
            }),
        ]),
    ];
    for e in &r.failures {
        lines.push(Line::from(Span::styled(format!("  x {e}"), error_style())));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "where the time went (ms)",
        title_style(),
    )));
    for (what, v) in r.split() {
        lines.push(Line::from(vec![
            Span::styled(format!("  {what:<20}"), dim()),
            Span::raw(format::opt(v, |x| format!("{x:>9.2}"))),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<20}", "total"), dim()),
        Span::raw(format::opt(r.duration_ms, |x| format!("{x:>9.2}"))),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<20}", "our overhead (µs)"), dim()),
        Span::raw(format::opt(r.overhead_us, |x| format!("{x:>9.1}"))),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<20}", "tokens in / out"), dim()),
        Span::raw(format!("{} / {}", r.prompt_tokens, r.completion_tokens)),
    ]));
    lines.push(Line::from(Span::styled("esc closes", dim())));
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = area.width.saturating_sub(4).min(100);
    let box_ = super::centered(area, w, h);
    f.render_widget(Clear, box_);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Request ", title_style()))),
        box_,
    );
}
