//! Chat: the route and parameters, the conversation with the answer streaming in, the message
//! box, and a footer with TTFT, tokens/s, who served the answer and any fallback.
use super::common::*;
use crate::format;
use crate::provider::router::Attempt;
use crate::session::AnswerMeta;
use crate::tui::app::{App, Typing, CHAT_SETTINGS};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let input_h = (app.chat.input.lines().len() as u16 + 2).clamp(3, 8);
    let [settings, convo, footer, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(input_h),
    ])
    .areas(area);
    f.render_widget(settings_line(app), settings);
    conversation(f, app, convo);
    f.render_widget(footer_line(app), footer);
    let focused = app.typing == Typing::ChatMessage;
    let mut ta = app.chat.input.clone();
    let title = if focused {
        " Message · enter sends · alt-enter: new line · esc leaves "
    } else {
        " Message · i to type "
    };
    ta.set_block(Block::bordered().title(title).border_style(if focused {
        Style::new().fg(Color::Cyan)
    } else {
        dim()
    }));
    if !focused {
        ta.set_cursor_style(Style::new());
    }
    f.render_widget(&ta, input);
    if app.chat.settings_open {
        settings_form(f, app, convo);
    }
}

fn settings_line(app: &App) -> Line<'static> {
    let p = &app.chat.params;
    let sys = if app.chat.conv.system.trim().is_empty() {
        "none".to_string()
    } else {
        format::clip(&app.chat.conv.system.replace('\n', " "), 40)
    };
    Line::from(vec![
        Span::styled(" route ", dim()),
        Span::styled(
            app.chat_route().unwrap_or("-").to_string(),
            title_style().fg(Color::Cyan),
        ),
        Span::styled(" ([ ]) · temperature ", dim()),
        Span::raw(or_route(p.temperature.map(|t| t.to_string()))),
        Span::styled(" · max tokens ", dim()),
        Span::raw(or_route(p.max_tokens.map(|t| t.to_string()))),
        Span::styled(" · system ", dim()),
        Span::raw(sys),
        Span::styled(" (e edits)", dim()),
    ])
}

/// An unset parameter is left to the route's `params` in the config.
fn or_route(v: Option<String>) -> String {
    v.unwrap_or_else(|| "route's".into())
}

fn who(meta_route: &str, served: Option<&crate::provider::router::ServedBy>) -> String {
    match served {
        Some(s) if s.route != meta_route => format!("{} via {}", s.route, meta_route),
        Some(s) => s.route.clone(),
        None => meta_route.to_string(),
    }
}

fn conversation(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(Span::styled(
        match app.chat.conv.turns.len() {
            1 => " Chat · 1 turn ".to_string(),
            n => format!(" Chat · {n} turns "),
        },
        title_style(),
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = inner.width.saturating_sub(1) as usize;
    let you = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let bot = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    // Only the turns that reach the screen are wrapped, newest first, so a frame costs the
    // same after a thousand turns as after one.
    let need = inner.height as usize + app.chat.back;
    let mut blocks: Vec<Vec<Line>> = Vec::new();
    let mut count = 0;
    if let Some(s) = &app.chat.streaming {
        let mut b = vec![Line::from(Span::styled("you", you))];
        b.extend(wrap(&s.user, width).into_iter().map(Line::from));
        let status = if s.served_by.is_none() {
            " (waiting for the first token…)"
        } else {
            ""
        };
        b.push(Line::from(vec![
            Span::styled(who(&s.route, s.served_by.as_ref()), bot),
            Span::styled(status, dim()),
        ]));
        let mut body = wrap(&s.text, width);
        if let Some(last) = body.last_mut() {
            last.push('▌');
        }
        b.extend(body.into_iter().map(Line::from));
        count += b.len();
        blocks.push(b);
    }
    for t in app.chat.conv.turns.iter().rev() {
        if count >= need {
            break;
        }
        let mut b = vec![Line::from(Span::styled("you", you))];
        b.extend(wrap(&t.user, width).into_iter().map(Line::from));
        b.push(Line::from(Span::styled(
            who(&t.meta.route, t.meta.served_by.as_ref()),
            bot,
        )));
        b.extend(wrap(&t.answer, width).into_iter().map(Line::from));
        if t.meta.cancelled {
            b.push(Line::from(Span::styled("[cancelled]", dim())));
        }
        if let Some(e) = &t.meta.error {
            for l in wrap(e, width) {
                b.push(Line::from(Span::styled(l, error_style())));
            }
        }
        b.push(Line::from(""));
        count += b.len();
        blocks.push(b);
    }
    let mut lines: Vec<Line> = blocks.into_iter().rev().flatten().collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "No messages yet. Press i (or enter) and type; the answer streams in here. ] picks another route.",
            dim(),
        )));
    }
    let h = inner.height as usize;
    let max_back = lines.len().saturating_sub(h);
    let back = app.chat.back.min(max_back);
    let start = lines.len().saturating_sub(h + back);
    let shown: Vec<Line> = lines.into_iter().skip(start).take(h).collect();
    f.render_widget(Paragraph::new(shown), inner);
}

fn meta_facts(m: &AnswerMeta) -> Vec<Span<'static>> {
    let mut v = vec![];
    if let Some(t) = m.ttft_ms {
        v.push(Span::raw(format!("TTFT {} · ", format::ms(t))));
    }
    if let Some(t) = m.tokens_per_s {
        v.push(Span::raw(format!("{t:.1} tok/s · ")));
    }
    if let Some(u) = m.usage {
        v.push(Span::raw(format!("{} tokens · ", u.completion_tokens)));
    }
    if let Some(s) = &m.served_by {
        v.push(Span::raw(format!("served by {} ({})", s.route, s.model)));
    }
    v.extend(attempts_span(&m.attempts, m.served_by.is_some()));
    v
}

/// The failed attempts before an answer. With no server that answered (yet, while
/// streaming), nothing fell back: the request failed there.
fn attempts_span(attempts: &[Attempt], served: bool) -> Option<Span<'static>> {
    if attempts.is_empty() {
        return None;
    }
    let failed: Vec<String> = attempts
        .iter()
        .map(|a| format!("{} {}", a.route, a.class))
        .collect();
    let text = if served {
        format!(" · fallback after {}", failed.join(", "))
    } else {
        format!("failed: {}", failed.join(", "))
    };
    Some(Span::styled(text, Style::new().fg(Color::Yellow)))
}

fn footer_line(app: &App) -> Line<'static> {
    if let Some(s) = &app.chat.streaming {
        let mut spans = vec![Span::styled(
            " streaming · esc cancels · ",
            Style::new().fg(Color::Yellow),
        )];
        if let Some(t) = s.ttft_ms {
            spans.push(Span::raw(format!("TTFT {} · ", format::ms(t))));
        }
        if let Some(sb) = &s.served_by {
            spans.push(Span::raw(format!("served by {} ({})", sb.route, sb.model)));
        }
        // While streaming, earlier attempts always fell back to the one answering.
        spans.extend(attempts_span(&s.attempts, true));
        return Line::from(spans);
    }
    match app.chat.conv.turns.last() {
        Some(t) => {
            let mut spans = vec![Span::raw(" ")];
            spans.extend(meta_facts(&t.meta));
            Line::from(spans)
        }
        None => Line::from(Span::styled(
            " w saves the conversation as Markdown · n starts a new one",
            dim(),
        )),
    }
}

fn settings_form(f: &mut Frame, app: &App, area: Rect) {
    let r = super::centered(area, area.width.saturating_sub(6).min(90), 7);
    f.render_widget(Clear, r);
    let mut lines = Vec::new();
    for (i, name) in CHAT_SETTINGS.iter().enumerate() {
        let (value, editing) = match &app.typing {
            Typing::ChatSetting(fi, buf) if *fi == i => (format!("{buf}▏"), true),
            _ => (
                match i {
                    0 => app.chat.conv.system.clone(),
                    1 => or_route(app.chat.params.temperature.map(|t| t.to_string())),
                    _ => or_route(app.chat.params.max_tokens.map(|t| t.to_string())),
                },
                false,
            ),
        };
        let style = if editing {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{name:>14}: "), dim()),
            Span::styled(value, style),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "tab/↑↓ next field · enter saves · esc closes · empty = the route's default",
        dim(),
    )));
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Chat settings ")),
        r,
    );
}
