//! Drawing: a pure function of the state. Header, pane tabs, the pane, the bottom line, and
//! whatever overlay is open.
mod bench;
mod bench_charts;
mod bench_find_max;
mod bench_soak;
mod chat;
mod cluster;
pub mod common;
mod gpu;
mod logs;
mod models;
mod routes;
mod servers;
mod traffic;
mod traffic_request;

use super::app::{App, Overlay, Pane, Typing, PANES};
use common::*;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// `NO_COLOR`: every cell loses its colours; what a colour marked (a highlight, a selection)
/// stays visible as reverse video.
pub fn strip_colours(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.bg != Color::Reset {
            cell.modifier.insert(ratatui::style::Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, tabs, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(header_line(app, header.width as usize), header);
    f.render_widget(tab_line(app, tabs.width), tabs);
    match app.pane {
        Pane::Servers => servers::render(f, app, body),
        Pane::Gpu => gpu::render(f, app, body),
        Pane::Routes => routes::render(f, app, body),
        Pane::Chat => chat::render(f, app, body),
        Pane::Bench => bench::render(f, app, body),
        Pane::Logs => logs::render(f, app, body),
        Pane::Cluster => cluster::render(f, app, body),
        Pane::Traffic => traffic::render(f, app, body),
        Pane::Models => models::render(f, app, body),
    }
    f.render_widget(bottom_line(app), bottom);
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help => help(f, app, body),
        Overlay::Quit { running } => dialog(
            f,
            body,
            "Quit",
            vec![
                Line::from(format!(
                    "Servers this console started are still running: {}",
                    running.join(", ")
                )),
                Line::from(""),
                Line::from(vec![
                    Span::styled("y", key_style()),
                    Span::raw("  stop them, then quit"),
                ]),
                Line::from(vec![
                    Span::styled("l", key_style()),
                    Span::raw(
                        "  leave them running and quit (see them with `anorag-tui server status`)",
                    ),
                ]),
                Line::from(vec![
                    Span::styled("esc", key_style()),
                    Span::raw("  cancel"),
                ]),
            ],
        ),
        Overlay::ConfirmStop(name) => {
            let st = app.servers.list.iter().find(|s| &s.name == name);
            let grace = st
                .map(|s| match (&s.cluster, &s.job) {
                    (Some(c), job) => format!(
                        "{} (job {} on {c}/{}, port {})",
                        s.name,
                        job.as_deref().unwrap_or("?"),
                        s.node.as_deref().unwrap_or("?"),
                        s.port
                    ),
                    _ => format!("{} (pid {}, port {})", s.name, s.pid.unwrap_or(0), s.port),
                })
                .unwrap_or_else(|| name.clone());
            let how = if st.is_some_and(|s| s.cluster.is_some()) {
                "Ray stops its job: SIGTERM to the job's processes, SIGKILL after a few seconds."
            } else {
                "SIGTERM to its process group, SIGKILL after its stop_timeout."
            };
            dialog(
                f,
                body,
                "Stop server",
                vec![
                    Line::from(format!("Stop {grace}?")),
                    Line::from(how),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled("y", key_style()),
                        Span::raw(" stop   "),
                        Span::styled("esc", key_style()),
                        Span::raw(" keep it running"),
                    ]),
                ],
            );
        }
    }
    if app.no_color {
        strip_colours(f.buffer_mut());
    }
}

fn header_line(app: &App, width: usize) -> Line<'static> {
    let h = &app.host.sample;
    let mut parts: Vec<Span<'static>> = vec![Span::styled(
        " anorag-tui ",
        Style::new()
            .bg(Color::Blue)
            .fg(Color::White)
            .add_modifier(Modifier::BOLD),
    )];
    let cpu = if h.cores > 0 {
        format!(
            " cpu {:>3.0}% · mem {} ",
            h.cpu_pct,
            crate::format::bytes_of(h.memory_used_bytes, h.memory_total_bytes)
        )
    } else {
        " cpu … · mem … ".to_string()
    };
    parts.push(Span::raw(cpu));
    parts.push(Span::styled("│", dim()));
    let right = format!("{} {} ", app.config_name, clock(app.now));
    let ro = if app.read_only { " read-only " } else { "" };
    // The GPU summary gets what is left, so the clock always shows.
    let fixed: usize = parts
        .iter()
        .map(|s| s.content.chars().count())
        .sum::<usize>()
        + right.chars().count()
        + ro.len()
        + 3;
    let room = width.saturating_sub(fixed).max(8);
    parts.push(Span::raw(format!(
        " {} ",
        crate::format::clip(&gpu_summary(app), room)
    )));
    if app.read_only {
        parts.push(Span::styled(ro, Style::new().fg(Color::Yellow)));
    }
    let used: usize = parts.iter().map(|s| s.content.chars().count()).sum();
    let pad = width.saturating_sub(used + right.chars().count());
    parts.push(Span::raw(" ".repeat(pad)));
    parts.push(Span::styled(right, dim()));
    Line::from(parts)
}

/// The header's GPU text: one entry per device, or the status where there is none.
pub fn gpu_summary(app: &App) -> String {
    let mut out = Vec::new();
    for s in &app.gpu.samples {
        if !s.status.is_ok() {
            if s.source == "local" {
                out.push(format!("GPU: {}", s.status.word()));
            } else {
                out.push(format!("{}: {}", s.source, s.status.word()));
            }
            continue;
        }
        for d in &s.devices {
            let mem = match (d.memory_used_bytes, d.memory_total_bytes) {
                (Some(u), Some(t)) => format!(" {}", crate::format::bytes_of(u, t)),
                _ => String::new(),
            };
            let src = if s.source == "local" {
                String::new()
            } else {
                format!("{}:", s.source)
            };
            out.push(format!(
                "{src}GPU{} {}{mem}",
                d.index,
                crate::format::opt(d.utilization_gpu_pct, |u| format!("{u}%"))
            ));
        }
    }
    if out.is_empty() {
        "GPU: …".into()
    } else {
        out.join(" · ")
    }
}

fn tab_line(app: &App, width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    // Nine tabs take 84 columns with a space either side; an 80-column terminal gets one.
    let wide = width >= 86;
    for (i, p) in PANES.iter().enumerate() {
        let label = if wide {
            format!(" {} {} ", i + 1, p.title())
        } else {
            format!("{} {} ", i + 1, p.title())
        };
        if *p == app.pane {
            spans.push(Span::styled(label, selected()));
        } else {
            spans.push(Span::raw(label));
        }
    }
    if let Some(f) = app.filter() {
        spans.push(Span::styled(
            format!("  filter: {f}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    Line::from(spans)
}

fn bottom_line(app: &App) -> Line<'static> {
    match &app.typing {
        Typing::Command(b) => {
            return Line::from(vec![
                Span::styled(":", key_style()),
                Span::raw(b.clone()),
                Span::styled("▏", key_style()),
            ]);
        }
        Typing::Filter(b) => {
            return Line::from(vec![
                Span::styled("/", key_style()),
                Span::raw(b.clone()),
                Span::styled("▏", key_style()),
                Span::styled("  enter keeps · esc clears", dim()),
            ]);
        }
        _ => {}
    }
    if let Some(n) = &app.notice {
        let style = if n.error {
            error_style().add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        return Line::from(Span::styled(format!(" {}", n.text), style));
    }
    let mut spans = vec![Span::raw(" ")];
    for (k, w) in app.keys.hints(app.pane.ctx()) {
        spans.push(Span::styled(k, key_style()));
        spans.push(Span::raw(format!(" {w}  ")));
    }
    Line::from(spans)
}

/// A centred box of at most `w` by `h`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn dialog(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    let width = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    let r = centered(area, width.max(40), lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(Span::styled(format!(" {title} "), title_style())),
        ),
        r,
    );
}

fn help(f: &mut Frame, app: &App, area: Rect) {
    let entries = app.keys.help(app.pane.ctx());
    let mut lines: Vec<Line> = entries
        .iter()
        .map(|(k, h)| {
            Line::from(vec![
                Span::styled(format!("{k:>12}  "), key_style()),
                Span::raw(*h),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Commands: :servers :gpu :routes :chat :bench :logs NAME :cluster :traffic :models :start NAME :stop NAME :route NAME :save [FILE] :report [FILE] :baseline FILE :probe [ROUTE] :q",
        dim(),
    )));
    lines.push(Line::from(Span::styled(
        "Keys can be changed under tui.keys in dashboard.yaml. Any key closes this.",
        dim(),
    )));
    for e in app.engine_errors.iter().rev().take(3) {
        lines.push(Line::from(Span::styled(
            format!("internal error: {e}"),
            Style::new().fg(Color::Red),
        )));
    }
    let width = area.width.saturating_sub(4).min(110);
    // Rows once wrapped, so the last lines (errors among them) are not cut off.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let r = centered(area, width, (rows + 2).min(usize::from(u16::MAX)) as u16);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(
                format!(" Help · {} ", app.pane.title()),
                title_style(),
            ))),
        r,
    );
}
