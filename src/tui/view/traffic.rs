//! Traffic: the gateways' real requests, live. Per gateway its load and errors; per route of
//! the gateway shown its rate, TTFT, circuits, and the server's own running / waiting / KV
//! (with the requests it runs beyond the gateway's); the request list, newest first; the
//! events; and one request opened.
use super::common::*;
use super::traffic_request::{detail, stage_style, stage_text};
use crate::format;
use crate::traffic::model::RouteView;
use crate::traffic::{GatewayView, Row as Req};
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

fn ms1(v: Option<f64>) -> String {
    format::opt(v, |x| {
        if x < 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.0}")
        }
    })
}

/// A minute's sum of one figure of the per-second aggregates.
fn minute(v: &GatewayView, f: impl Fn(&crate::traffic::wire::SecondStats) -> u64) -> u64 {
    v.seconds.iter().rev().take(60).map(f).sum()
}

fn errors_text(v: &GatewayView) -> String {
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in v.seconds.iter().rev().take(60) {
        for (k, n) in &s.errors {
            *by.entry(k.as_str()).or_default() += n;
        }
    }
    if by.is_empty() {
        return "0".into();
    }
    by.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn gateways_table(f: &mut Frame, app: &App, area: Rect, wide: bool) {
    let t = &app.traffic;
    let rows = t.views.iter().enumerate().map(|(i, v)| {
        let last = v.last_second().cloned().unwrap_or_default();
        let state = match (v.up, wide) {
            (true, _) => Span::styled("up", Style::new().fg(Color::Green)),
            // Narrow: why is in the events below.
            (false, false) => Span::styled("DOWN", error_style()),
            (false, true) => Span::styled(
                format!(
                    "DOWN {}",
                    v.down_reason.as_deref().unwrap_or("not reached yet")
                ),
                error_style(),
            ),
        };
        let mut cells = vec![
            Cell::from(v.addr.clone()),
            Cell::from(last.started.to_string()),
            Cell::from(last.in_flight.to_string()),
            Cell::from(last.queued.to_string()),
            Cell::from(format!(
                "{}/{}",
                format::opt(last.overhead_p50_us, |x| format!("{x:.0}")),
                format::opt(last.overhead_p99_us, |x| format!("{x:.0}"))
            )),
            Cell::from(v.fallbacks_per_minute().to_string()),
            Cell::from(minute(v, |s| s.cancelled).to_string()),
            Cell::from(Span::styled(errors_text(v), error_style())),
        ];
        if wide {
            let rate: Vec<f64> = v.seconds.iter().map(|s| s.started as f64).collect();
            cells.push(Cell::from(Span::styled(
                spark_values(&rate, 30),
                Style::new().fg(Color::Cyan),
            )));
        }
        cells.push(Cell::from(state));
        let row = Row::new(cells);
        if i == t.gateway && t.views.len() > 1 {
            row.style(Style::new().add_modifier(Modifier::BOLD))
        } else {
            row
        }
    });
    let mut header = vec![
        "GATEWAY",
        "REQ/S",
        "INFL",
        "QUEUE",
        "OVH µs",
        "FB/MIN",
        "CANC",
        "ERRORS/MIN",
    ];
    let mut widths = vec![
        Constraint::Length(if wide { 21 } else { 15 }),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(if wide { 26 } else { 10 }),
    ];
    if wide {
        header.push("REQ/S (5 MIN)");
        widths.push(Constraint::Length(30));
    }
    header.push("STATE");
    widths.push(Constraint::Min(4));
    let mut title = if t.views.len() > 1 {
        format!(" Traffic · {} gateways (] [ switch)", t.views.len())
    } else {
        " Traffic".to_string()
    };
    if let Some(v) = t.view() {
        let tot = &v.totals;
        let errors: u64 = tot.errors.values().sum();
        title.push_str(&if wide {
            format!(
                " · since watched: {} ok, {errors} errors, {} fallbacks, {} cancelled, {} refused ",
                tot.ok, tot.fallbacks, tot.cancelled, tot.refused
            )
        } else {
            format!(
                " · {} ok · {errors} err · {} fb · {} canc · {} refused ",
                tot.ok, tot.fallbacks, tot.cancelled, tot.refused
            )
        });
    }
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(title_style()))
            .block(Block::bordered().title(Span::styled(title, title_style()))),
        area,
    );
}

fn circuits_text(r: &RouteView, wide: bool) -> Span<'static> {
    let open: Vec<String> = r
        .circuits
        .iter()
        .filter(|c| c.state != "closed")
        .map(|c| {
            let what = match (c.state.as_str(), c.reopens_in_ms) {
                ("open", Some(0) | None) => "open, probe due".to_string(),
                ("open", Some(ms)) => format!("open {:.1}s", ms as f64 / 1000.0),
                ("half_open", _) => "half-open".to_string(),
                (s, _) => s.to_string(),
            };
            if wide && r.circuits.len() > 1 {
                format!("{} {what}", c.target)
            } else {
                what
            }
        })
        .collect();
    match (open.is_empty(), r.circuits.is_empty()) {
        (_, true) => Span::styled("-", dim()),
        (true, false) => Span::styled("closed", Style::new().fg(Color::Green)),
        (false, false) => Span::styled(open.join(", "), Style::new().fg(Color::Red)),
    }
}

fn routes_table(f: &mut Frame, app: &App, v: &GatewayView, routes: &[RouteView], area: Rect) {
    let wide = area.width >= 150;
    let rows = routes.iter().map(|r| {
        // The server's own figures while it answers its probes (a stopped server's last
        // reading says nothing about now).
        let m = app
            .routes
            .table
            .routes
            .iter()
            .find(|x| x.route == r.route)
            .and_then(|x| x.targets.first())
            .filter(|t| t.state == crate::telemetry::routes::Health::Up)
            .and_then(|t| t.metrics.as_ref());
        let running = m.and_then(|m| m.num_requests_running);
        let orphans = running.map(|run| v.orphans(&r.route, run));
        let l = &r.last;
        let mut cells = vec![
            Cell::from(r.route.clone()),
            Cell::from(l.requests.to_string()),
            Cell::from(l.in_flight.to_string()),
            Cell::from(format!("{}/{}", ms1(l.ttft_p50_ms), ms1(l.ttft_p99_ms))),
            Cell::from(l.completion_tokens.to_string()),
            Cell::from(Span::styled(
                l.errors.to_string(),
                if l.errors > 0 { error_style() } else { dim() },
            )),
            Cell::from(format!("{}/{}", l.fallbacks_in, l.fallbacks_out)),
            Cell::from(format!(
                "{}/{}/{}",
                format::opt(running, |x| format!("{x:.0}")),
                format::opt(m.and_then(|m| m.num_requests_waiting), |x| format!(
                    "{x:.0}"
                )),
                format::opt(m.and_then(|m| m.kv_cache_usage), |x| format!(
                    "{:.0}%",
                    x * 100.0
                )),
            )),
            Cell::from(Span::styled(
                format::opt(orphans, |o| o.to_string()),
                if orphans.unwrap_or(0) > 0 {
                    error_style().add_modifier(Modifier::BOLD)
                } else {
                    dim()
                },
            )),
        ];
        if wide {
            let h: Vec<f64> = r.history.iter().map(|x| *x as f64).collect();
            cells.push(Cell::from(Span::styled(
                spark_values(&h, 24),
                Style::new().fg(Color::Cyan),
            )));
        }
        cells.push(Cell::from(circuits_text(r, wide)));
        Row::new(cells)
    });
    let mut header = vec![
        "ROUTE",
        "REQ/S",
        "INFL",
        "TTFT50/99",
        "TOK/S",
        "ERR",
        "FB I/O",
        "RUN/WAIT/KV",
        "ORPH",
    ];
    let mut widths = vec![
        Constraint::Length(if wide { 14 } else { 11 }),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Length(6),
        Constraint::Length(11),
        Constraint::Length(4),
    ];
    if wide {
        header.push("REQ/S (5 MIN)");
        widths.push(Constraint::Length(24));
    }
    header.push("CIRCUITS");
    widths.push(Constraint::Min(6));
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(title_style()))
            .block(Block::bordered().title(Span::styled(
                format!(" Routes through {} (last second) ", v.addr),
                title_style(),
            ))),
        area,
    );
}

fn requests_table(f: &mut Frame, app: &App, rows: &[&Req], area: Rect) {
    let wide = area.width >= 150;
    let inner_h = area.height.saturating_sub(3) as usize;
    let sel = app.traffic.selected;
    let skip = sel.saturating_sub(inner_h.saturating_sub(1));
    let table_rows = rows
        .iter()
        .enumerate()
        .skip(skip)
        .take(inner_h)
        .map(|(i, r)| {
            let route = match &r.served_by {
                Some(s) if *s != r.route => format!("{}→{s}", r.route),
                _ => r.route.clone(),
            };
            let mut cells = vec![Cell::from(clock_s(r.at_ms as f64 / 1000.0))];
            if wide {
                cells.push(Cell::from(r.client.clone()));
                cells.push(Cell::from(r.dialect.clone()));
                cells.push(Cell::from(r.model.clone()));
            }
            cells.extend([
                Cell::from(route),
                Cell::from(Span::styled(
                    if wide || r.stage != "error" {
                        stage_text(r)
                    } else {
                        format!("error {}", format::opt(r.status, |s| s.to_string()))
                    },
                    stage_style(&r.stage),
                )),
                Cell::from(ms1(r.ttft_ms)),
                Cell::from(r.completion_tokens.to_string()),
                Cell::from(ms1(r.duration_ms)),
            ]);
            if wide {
                cells.push(Cell::from(r.server.clone().unwrap_or_default()));
            }
            cells.push(Cell::from(r.chain.clone()));
            let row = Row::new(cells);
            if i == sel {
                row.style(selected())
            } else {
                row
            }
        });
    let mut header = vec!["TIME"];
    let mut widths = vec![Constraint::Length(8)];
    if wide {
        header.extend(["CLIENT", "API", "MODEL"]);
        widths.extend([
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(16),
        ]);
    }
    header.extend(["ROUTE", "STAGE", "TTFT", "TOK", "MS"]);
    widths.extend([
        Constraint::Length(if wide { 22 } else { 17 }),
        Constraint::Length(if wide { 20 } else { 12 }),
        Constraint::Length(if wide { 6 } else { 5 }),
        Constraint::Length(if wide { 5 } else { 4 }),
        Constraint::Length(if wide { 7 } else { 5 }),
    ]);
    if wide {
        header.push("SERVER");
        widths.push(Constraint::Length(26));
    }
    header.push("ATTEMPTS");
    widths.push(Constraint::Min(8));
    let t = &app.traffic;
    let state = if t.paused.is_some() {
        Span::styled(
            "PAUSED (p: live)",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    } else {
        Span::styled("live", Style::new().fg(Color::Green))
    };
    let missed = t.view().map_or(0, |v| v.missed);
    let mut title = vec![
        Span::styled(format!(" Requests · {} · ", rows.len()), title_style()),
        state,
    ];
    if missed > 0 {
        title.push(Span::styled(
            format!(" · {missed} events missed"),
            error_style(),
        ));
    }
    title.push(Span::styled(" · enter opens · / filters ", dim()));
    f.render_widget(
        Table::new(table_rows, widths)
            .header(Row::new(header).style(title_style()))
            .block(Block::bordered().title(Line::from(title))),
        area,
    );
}

fn events_box(f: &mut Frame, v: &GatewayView, area: Rect) {
    let n = area.height.saturating_sub(2) as usize;
    let w = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = v
        .lines
        .iter()
        .rev()
        .take(n)
        .rev()
        .map(|l| {
            let t = &l.text;
            let style = if t.contains("is down") || t.contains("circuit open") {
                error_style()
            } else if t.contains("failed") || t.contains("broken") || t.contains("refused") {
                Style::new().fg(Color::Yellow)
            } else {
                Style::default()
            };
            let at = if l.at_ms > 0 {
                clock_s(l.at_ms as f64 / 1000.0)
            } else {
                "--:--:--".into()
            };
            Line::from(vec![
                Span::styled(format!("{at} "), dim()),
                Span::styled(format::clip(t, w.saturating_sub(9)), style),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(Span::styled(
            format!(" Events · {} ", v.lines_total),
            title_style(),
        ))),
        area,
    );
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.traffic;
    let Some(v) = t.view() else {
        f.render_widget(
            Paragraph::new(vec![
                Line::from("No gateway to watch."),
                Line::from(Span::styled(
                    "Add a `kind: gateway` server profile or a `gateway:` block to the config, or run `anorag-tui gateway`.",
                    dim(),
                )),
            ])
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Traffic ", title_style()))),
            area,
        );
        return;
    };
    let wide = area.width >= 150;
    let routes = v.routes();
    let gw_h = (t.views.len() as u16 + 3).min(6);
    let events_h = match area.height {
        h if h >= 40 => 8,
        h if h >= 20 => 3,
        _ => 0,
    };
    let room = area.height.saturating_sub(gw_h + events_h);
    let routes_h = (routes.len() as u16 + 3).min((room / 2).max(4));
    let [g, r, list, ev] = Layout::vertical([
        Constraint::Length(gw_h),
        Constraint::Length(routes_h),
        Constraint::Min(4),
        Constraint::Length(events_h),
    ])
    .areas(area);
    gateways_table(f, app, g, wide);
    routes_table(f, app, v, &routes, r);
    let rows = app.traffic_rows();
    requests_table(f, app, &rows, list);
    if events_h > 0 {
        events_box(f, v, ev);
    }
    if let Some(id) = t.open {
        let found = rows
            .iter()
            .find(|r| r.id == id)
            .copied()
            .or_else(|| v.row(id));
        match found {
            Some(r) => detail(f, r, area),
            None => detail(
                f,
                &Req {
                    id,
                    stage: "no longer in the list".into(),
                    ..Req::default()
                },
                area,
            ),
        }
    }
}
