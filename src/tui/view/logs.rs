//! Logs: one server's output, followed or scrolled, wrapped or cut, filtered with the matches
//! highlighted, with the count of lines the ring had to drop.
use super::common::*;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let current = app.log_server();
    let mut spans = vec![Span::styled(" servers: ", dim())];
    for s in &app.servers.list {
        let label = format!(" {} ", s.name);
        if Some(&s.name) == current.as_ref() {
            spans.push(Span::styled(label, selected()));
        } else {
            spans.push(Span::styled(label, state_style(s.state)));
        }
    }
    spans.push(Span::styled("  [ ] switch", dim()));
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let Some(name) = current else {
        f.render_widget(
            Paragraph::new("No server to show.").block(Block::bordered().title(" Logs ")),
            body,
        );
        return;
    };
    let ring = app.logs.rings.get(&name);
    let filter = app.filter().map(str::to_lowercase);
    let (total, dropped, kept) = ring.map_or((0, 0, 0), |r| (r.total(), r.dropped(), r.len()));
    let mode = if app.logs.follow {
        "following"
    } else {
        "scrolled (G follows)"
    };
    let title = format!(
        " Logs · {name} · {kept} lines kept of {total} · dropped {dropped} · {mode}{} ",
        if app.logs.wrap { " · wrap" } else { "" }
    );
    let block = Block::bordered()
        .title(Span::styled(title, title_style()))
        .border_style(if dropped > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        });
    let inner = block.inner(body);
    f.render_widget(block, body);
    let Some(ring) = ring else {
        f.render_widget(
            Paragraph::new(Span::styled("Nothing logged yet.", dim())),
            inner,
        );
        return;
    };
    let h = inner.height as usize;
    let w = inner.width as usize;
    // Walk back from the end, skipping `back` lines, until the screen is full.
    let mut rows: Vec<Line> = Vec::with_capacity(h);
    let mut skipped = 0usize;
    for l in ring.iter().rev() {
        if let Some(f) = &filter {
            if !l.to_lowercase().contains(f.as_str()) {
                continue;
            }
        }
        if skipped < app.logs.back {
            skipped += 1;
            continue;
        }
        let pieces: Vec<String> = if app.logs.wrap {
            wrap(l, w)
        } else {
            vec![l.chars().take(w).collect()]
        };
        for p in pieces.into_iter().rev() {
            rows.push(match &filter {
                Some(f) => highlight(&p, f).to_owned_line(),
                None => Line::raw(p),
            });
            if rows.len() >= h {
                break;
            }
        }
        if rows.len() >= h {
            break;
        }
    }
    rows.reverse();
    f.render_widget(Paragraph::new(rows), inner);
}

trait Owned {
    fn to_owned_line(self) -> Line<'static>;
}

impl Owned for Line<'_> {
    fn to_owned_line(self) -> Line<'static> {
        Line::from(
            self.spans
                .into_iter()
                .map(|s| Span::styled(s.content.into_owned(), s.style))
                .collect::<Vec<_>>(),
        )
    }
}
