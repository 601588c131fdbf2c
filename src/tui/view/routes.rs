//! Routes: health, latency history, the router's circuit, and vLLM's own running / waiting /
//! KV-cache numbers, with the selected route's targets below.
use super::common::*;
use crate::format;
use crate::provider::circuit::CircuitState;
use crate::telemetry::routes::RouteHealth;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

fn circuit_span(c: CircuitState, reopens_ms: Option<u64>) -> Span<'static> {
    match c {
        CircuitState::Closed => Span::styled("closed", Style::new().fg(Color::Green)),
        CircuitState::HalfOpen => Span::styled("half-open", Style::new().fg(Color::Yellow)),
        CircuitState::Open => Span::styled(
            format!(
                "open {}",
                format::opt(reopens_ms, |m| format!("{:.0}s", m as f64 / 1000.0))
            ),
            Style::new().fg(Color::Red),
        ),
    }
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let routes = app.visible_routes();
    // The table as tall as its rows; the selected route's details get the rest.
    let table_h = (routes.len() as u16 + 3).max(5);
    let detail_h = if area.height >= table_h + 6 {
        area.height - table_h
    } else {
        0
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(detail_h)]).areas(area);
    table(f, app, &routes, top);
    if detail_h > 0 {
        if let Some(r) = routes.get(app.routes.selected) {
            detail(f, r, bottom);
        }
    }
}

/// Every route: health, latency and its history, circuit, vLLM's gauges, real traffic.
fn table(f: &mut Frame, app: &App, routes: &[&RouteHealth], top: Rect) {
    let wide = top.width >= 150;
    let spark_w = if wide { 16 } else { 8 };
    // Real traffic columns when a gateway carries these routes.
    let carried = app.traffic.views.iter().any(|v| v.up);
    let rows = routes.iter().enumerate().map(|(i, r)| {
        let t = r.targets.first();
        let m = t.and_then(|t| t.metrics.as_ref());
        let server = app
            .servers
            .list
            .iter()
            .find(|s| s.route.as_deref() == Some(r.route.as_str()) && s.is_running())
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let mut cells = vec![
            Cell::from(format!("{}{}", r.route, if r.default { "*" } else { "" })),
            Cell::from(r.kind.as_str()),
            Cell::from(Span::styled(r.state().as_str(), health_style(r.state()))),
            Cell::from(format::opt(t.and_then(|t| t.latency_ms), format::ms)),
            Cell::from(Span::styled(
                t.map(|t| spark(&t.latency_history, spark_w, None))
                    .unwrap_or_default(),
                Style::new().fg(Color::Cyan),
            )),
            Cell::from(
                t.map(|t| circuit_span(t.circuit.state, t.circuit.reopens_in_ms))
                    .unwrap_or_else(|| Span::raw("-")),
            ),
            Cell::from(format::opt(m.and_then(|m| m.num_requests_running), |v| {
                format!("{v:.0}")
            })),
            Cell::from(format::opt(m.and_then(|m| m.num_requests_waiting), |v| {
                format!("{v:.0}")
            })),
            Cell::from(format::opt(m.and_then(|m| m.kv_cache_usage), |v| {
                format!("{:.0}%", v * 100.0)
            })),
        ];
        if wide {
            cells.push(Cell::from(format::opt(
                m.and_then(|m| m.generation_tokens_per_s),
                |v| format!("{v:.0}"),
            )));
            cells.push(Cell::from(server));
            cells.push(Cell::from(t.map(|t| t.url.clone()).unwrap_or_default()));
        }
        if carried {
            cells.push(Cell::from(format::opt(
                app.traffic.route_traffic(&r.route),
                |(rate, err, p99)| {
                    format!(
                        "{rate:.1}/s {:.0}% {}",
                        err * 100.0,
                        format::opt(p99, format::ms)
                    )
                },
            )));
        }
        cells.push(Cell::from(Span::styled(
            t.and_then(|t| t.last_error.clone()).unwrap_or_default(),
            error_style(),
        )));
        let row = Row::new(cells);
        if i == app.routes.selected {
            row.style(selected())
        } else {
            row
        }
    });
    let mut header = vec![
        "ROUTE", "KIND", "STATE", "LATENCY", "HISTORY", "CIRCUIT", "RUN", "WAIT", "KV",
    ];
    let mut widths = vec![
        Constraint::Length(13),
        Constraint::Length(11),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(spark_w as u16),
        Constraint::Length(9),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(4),
    ];
    if wide {
        header.extend(["GEN/S", "SERVER", "TARGET"]);
        widths.extend([
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(28),
        ]);
    }
    if carried {
        header.push("GATEWAY REQ/S ERR P99");
        widths.push(Constraint::Length(21));
    }
    header.push("ERROR");
    widths.push(Constraint::Min(10));
    let up = app
        .routes
        .table
        .routes
        .iter()
        .filter(|r| r.state() == crate::telemetry::routes::Health::Up)
        .count();
    let title = format!(
        " Routes · {up}/{} up · p probes now ",
        app.routes.table.routes.len()
    );
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(title_style()))
            .block(Block::bordered().title(Span::styled(title, title_style()))),
        top,
    );
}

/// The selected route: its fallback chain and, per target, latency, running, KV cache.
fn detail(f: &mut Frame, r: &RouteHealth, bottom: Rect) {
    let mut lines = Vec::new();
    if !r.fallback.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("falls back to ", dim()),
            Span::raw(r.fallback.join(" → ")),
        ]));
    }
    let w = (bottom.width as usize).saturating_sub(30).clamp(10, 60);
    for t in &r.targets {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t.url), title_style()),
            Span::styled(format!("model {} ", t.model), dim()),
            Span::raw(format!(
                "· {} in flight · {} failures in a row",
                t.in_flight, t.consecutive_failures
            )),
        ]));
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "latency"), dim()),
            Span::styled(
                spark(&t.latency_history, w, None),
                Style::new().fg(Color::Cyan),
            ),
        ]));
        if let Some(m) = &t.metrics {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "running"), dim()),
                Span::styled(
                    spark(&t.running_history, w, None),
                    Style::new().fg(Color::Green),
                ),
                Span::raw(format!(
                    "  waiting {}  ",
                    format::opt(m.num_requests_waiting, |v| format!("{v:.0}"))
                )),
                Span::raw(format!(
                    "gen {}  ",
                    format::opt(m.generation_tokens_per_s, |v| format!("{v:.0} tok/s"))
                )),
                Span::raw(format!(
                    "TTFT p50 {}  ",
                    format::opt(m.ttft_p50_ms, format::ms)
                )),
                Span::raw(format!(
                    "prefix hits {}",
                    format::opt(m.prefix_cache_hit_rate, |v| format!("{:.0}%", v * 100.0))
                )),
            ]));
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "KV cache"), dim()),
                Span::styled(
                    spark(&t.kv_history, w, Some(1.0)),
                    Style::new().fg(Color::Magenta),
                ),
            ]));
        }
        if let Some(e) = &t.circuit.last_error {
            lines.push(Line::from(vec![
                Span::styled("circuit: ", dim()),
                Span::styled(e.clone(), error_style()),
            ]));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(format!(" {} ", r.route), title_style()))),
        bottom,
    );
}
