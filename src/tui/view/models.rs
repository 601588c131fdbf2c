//! Models: every model this machine has (hub and ModelScope caches, `models.paths`, Ollama's
//! store) with its shape and users, then the selected one's details and fit estimate, or the
//! launch form with the estimate for the settings as typed.
use super::common::*;
use crate::format;
use crate::models::fit::Fit;
use crate::models::Model;
use crate::tui::app::{App, Typing};
use crate::tui::models_state::{self, LAUNCH_FIELDS};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let rows = app.models.list.len().clamp(1, 12) as u16 + 3;
    let [top, bottom] =
        Layout::vertical([Constraint::Length(rows), Constraint::Min(6)]).areas(area);
    list(f, app, top);
    match (&app.models.form, app.models.current()) {
        (Some(form), Some(m)) => launch_form(f, app, m, form, bottom),
        (None, Some(m)) => details(f, app, m, bottom),
        _ => {}
    }
}

fn title(app: &App) -> String {
    let m = &app.models;
    let age = match (m.scanning, m.scanned_at) {
        (true, _) => "scanning…".to_string(),
        (false, Some(t)) => format!(
            "scanned {} ago · r scans again",
            format::duration_s((app.now - t).max(0.0))
        ),
        (false, None) => "not scanned yet".into(),
    };
    format!(" Models · {} · {age} ", m.list.len())
}

fn list(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(Span::styled(title(app), title_style()));
    if app.models.list.is_empty() {
        let text = if app.models.scanning {
            "looking…"
        } else {
            "No models found in the Hugging Face cache (HF_HUB_CACHE, HF_HOME), the ModelScope cache, Ollama's store or the folders under `models.paths:` in the config."
        };
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    let header = Row::new([
        "SOURCE",
        "MODEL",
        "ARCHITECTURE",
        "PARAMS",
        "DTYPE",
        "CONTEXT",
        "SIZE",
        "USED BY",
    ])
    .style(dim());
    let rows = app.models.list.iter().enumerate().map(|(i, m)| {
        let s = m.shape.as_ref();
        let style = if i == app.models.selected {
            selected()
        } else {
            Style::new()
        };
        let warn = m.found.incomplete || !m.found.problems.is_empty();
        Row::new([
            Cell::from(m.found.source.label()),
            Cell::from(Span::styled(
                format!("{}{}", if warn { "! " } else { "" }, m.id()),
                if warn {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                },
            )),
            Cell::from(
                s.and_then(|s| s.architecture.clone())
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(
                m.parameters
                    .map(format::params)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(
                m.quantization
                    .clone()
                    .or_else(|| m.dtype.clone())
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(
                s.and_then(|s| s.context_length)
                    .map(format::thousands)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(format::bytes(m.found.size_bytes)),
            Cell::from(if m.used_by.is_empty() {
                "-".to_string()
            } else {
                m.used_by.join(", ")
            }),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn fit_lines(fit: Option<Result<Fit, String>>) -> Vec<Line<'static>> {
    match fit {
        None => vec![Line::from(Span::styled(
            "served by an Ollama route; no vLLM estimate",
            dim(),
        ))],
        Some(Err(e)) => vec![Line::from(Span::styled(format!("no estimate: {e}"), dim()))],
        Some(Ok(f)) => {
            let style = if !f.fits() {
                error_style()
            } else if matches!(f.verdict, crate::models::fit::Verdict::Unsized) {
                dim()
            } else {
                Style::new().fg(Color::Green)
            };
            let mut v = vec![Line::from(vec![
                Span::styled("fit   ", dim()),
                Span::styled(f.line(), style),
            ])];
            let kv = format!(
                "KV {} ({} B a token, {} KV tokens)",
                format::bytes(f.kv_space.max(0) as u64),
                format::thousands(f.kv_bytes_per_token),
                format::thousands(f.kv_tokens)
            );
            // On vLLM's CPU build the KV space is given outright: no weights or allowances
            // come out of it.
            let parts = match f.overhead {
                0 if f.budget > 0 => format!("      {kv}"),
                0 => String::new(),
                _ => format!(
                    "      per GPU: weights {} · allowances {} · {kv}",
                    format::bytes(f.weights),
                    format::bytes(f.overhead)
                ),
            };
            if !parts.is_empty() {
                v.push(Line::from(Span::styled(parts, dim())));
            }
            v.extend(
                f.notes
                    .iter()
                    .map(|n| Line::from(Span::styled(format!("      {n}"), dim()))),
            );
            v
        }
    }
}

fn details(f: &mut Frame, app: &App, m: &Model, area: Rect) {
    let mut lines = vec![Line::from(vec![
        Span::styled("path  ", dim()),
        Span::raw(m.found.path.display().to_string()),
        Span::styled(
            m.found
                .revision
                .as_ref()
                .map(|r| format!("  (refs/main {})", &r[..r.len().min(12)]))
                .unwrap_or_default(),
            dim(),
        ),
    ])];
    if let Some(s) = &m.shape {
        let kv = match s.mla_latent {
            Some(l) => format!("MLA latent {l}"),
            None => format!("{} KV heads × {}", s.kv_heads, s.head_dim),
        };
        let mut t = format!("{} layers · {} heads · {kv}", s.layers, s.attention_heads);
        if s.sliding_layers() > 0 {
            t.push_str(&format!(
                " · {} sliding ({})",
                s.sliding_layers(),
                s.sliding_window.unwrap_or(0)
            ));
        }
        if let Some(q) = &s.quantization {
            t.push_str(&format!(" · {q}"));
        }
        if let Some(e) = s.experts {
            t.push_str(&format!(" · {e} experts"));
        }
        lines.push(Line::from(vec![
            Span::styled("shape ", dim()),
            Span::raw(t),
        ]));
    }
    for p in &m.found.problems {
        lines.push(Line::from(vec![
            Span::styled("note  ", dim()),
            Span::styled(p.clone(), Style::new().fg(Color::Yellow)),
        ]));
    }
    let gpus = models_state::local_gpus(&app.gpu);
    lines.extend(fit_lines(models_state::fit(&app.models, m, None, &gpus)));
    lines.push(Line::from(Span::styled(
        if m.served_by() == "ollama" {
            "an Ollama model"
        } else {
            "enter: launch it (a form with the estimate for your settings)"
        },
        dim(),
    )));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(format!(" {} ", m.id()), title_style()))),
        area,
    );
}

fn launch_form(f: &mut Frame, app: &App, m: &Model, form: &models_state::LaunchForm, area: Rect) {
    let mut lines: Vec<Line> = LAUNCH_FIELDS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let value = match &app.typing {
                Typing::LaunchField(fi, buf) if *fi == i => format!("{buf}▏"),
                _ => form.values[i].clone(),
            };
            let hint = match i {
                2 if value.is_empty() => "  (default: the first TP x PP)",
                4 if value.is_empty() => "  (default: the model's own)",
                8 if value.is_empty() => "  (none; a route of the config on this machine to serve)",
                _ => "",
            };
            let st = if i == form.field {
                selected()
            } else {
                Style::new()
            };
            Line::from(vec![
                Span::styled(format!("{name:>16} "), dim()),
                Span::styled(value, st),
                Span::styled(hint, dim()),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    let gpus = models_state::local_gpus(&app.gpu);
    match models_state::profile_for(&app.models, form) {
        Ok(_) => lines.extend(fit_lines(models_state::fit(
            &app.models,
            m,
            Some(form),
            &gpus,
        ))),
        Err(e) => lines.push(Line::from(Span::styled(e, error_style()))),
    }
    let title = format!(
        " Launch {} · enter edits · s starts · w keeps as a profile · esc closes ",
        form.model
    );
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(title, title_style()))),
        area,
    );
}
