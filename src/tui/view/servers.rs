//! Servers: every launch profile with its state, and the selected one's details.
use super::common::*;
use crate::format;
use crate::supervisor::ServerStatus;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// A gateway's address and the clients among its recent requests, busiest first.
fn gateway_clients(v: &crate::traffic::GatewayView) -> String {
    let clients: Vec<String> = v
        .clients()
        .iter()
        .take(4)
        .map(|(c, n)| format!("{c} ({n})"))
        .collect();
    if clients.is_empty() {
        format!("{} · no clients yet", v.addr)
    } else {
        format!("{} · clients {}", v.addr, clients.join(", "))
    }
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let list = app.visible_servers();
    // The table as tall as its rows; the selected server's details (and log tail) get the rest.
    let table_h = (list.len() as u16 + 3).max(5);
    let detail_h = if area.height >= table_h + 6 {
        area.height - table_h
    } else {
        0
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(detail_h)]).areas(area);
    let wide = area.width >= 110;
    // Cluster servers have no pid here: their column says which node runs them.
    let fleet = app.servers.list.iter().any(|s| s.cluster.is_some());
    let pid_head = if fleet { "PID/NODE" } else { "PID" };
    let mut header = vec!["NAME", "KIND", "STATE", pid_head, "PORT", "UPTIME", "ROUTE"];
    if wide {
        header.extend(["MODEL", "GPU MEM", "CPU", "RSS"]);
    } else {
        header.push("GPU MEM");
    }
    let states: Vec<String> = list
        .iter()
        .map(|s| {
            let busy = app.servers.busy_note(&s.name);
            state_text(s, &busy)
        })
        .collect();
    // The state column is as wide as its longest text (an exit code, a pending stop);
    // the model takes what is left.
    let state_w = states
        .iter()
        .map(|t| t.chars().count() as u16 + 1)
        .max()
        .unwrap_or(0)
        .clamp(14, 34);
    let rows = list.iter().zip(states).enumerate().map(|(i, (s, state))| {
        let cells = row_cells(app, s, state, wide);
        let row = Row::new(cells);
        if i == app.servers.selected {
            row.style(selected())
        } else {
            row
        }
    });
    let widths = widths(wide, state_w);
    let running = app.servers.list.iter().filter(|s| s.is_running()).count();
    let autostarted = if app.autostarted.is_empty() {
        String::new()
    } else {
        format!("· autostarted {} ", app.autostarted.join(", "))
    };
    let title = format!(
        " Servers · {} profiles · {running} running {autostarted}",
        app.servers.list.len()
    );
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(title_style()))
        .block(Block::bordered().title(Span::styled(title, title_style())));
    f.render_widget(table, top);
    if detail_h > 0 {
        details(f, app, bottom);
    }
}

/// One server's cells: name (`*` when started here), kind, state, pid or node, port, uptime,
/// route (a gateway's: all), and model (a gateway's address and clients), GPU memory, CPU, RSS.
fn row_cells<'a>(app: &'a App, s: &'a ServerStatus, state: String, wide: bool) -> Vec<Cell<'a>> {
    let uptime = match (s.is_running(), s.started_unix) {
        (true, Some(t)) => format::duration_s(app.now - t),
        _ => "-".into(),
    };
    let usage = app.host.sample.servers.iter().find(|u| u.name == s.name);
    let mut cells = vec![
        Cell::from(format!(
            "{}{}",
            s.name,
            if app.servers.started_here.contains(&s.name) && s.is_running() {
                "*"
            } else {
                ""
            }
        )),
        Cell::from(s.kind.clone()),
        Cell::from(Span::styled(state, state_style(s.state))),
        Cell::from(match (&s.cluster, &s.node) {
            (Some(_), Some(n)) => n.clone(),
            (Some(c), None) => c.clone(),
            _ => format::opt(s.pid, |p| p.to_string()),
        }),
        Cell::from(s.port.to_string()),
        Cell::from(uptime),
        Cell::from(s.route.clone().unwrap_or_else(|| {
            if s.kind == "gateway" {
                "all routes"
            } else {
                "-"
            }
            .into()
        })),
    ];
    let gpu = format::opt(app.server_gpu_bytes(&s.name), format::bytes);
    if wide {
        let what = match app
            .traffic
            .of_server(s.port)
            .filter(|_| s.kind == "gateway")
        {
            Some(v) => gateway_clients(v),
            None => s.model.clone().unwrap_or_else(|| "-".into()),
        };
        cells.push(Cell::from(format::clip(&what, 64)));
        cells.push(Cell::from(gpu));
        cells.push(Cell::from(format::opt(
            usage.filter(|_| s.is_running()),
            |u| format!("{:.0}%", u.cpu_pct),
        )));
        cells.push(Cell::from(format::opt(
            usage.filter(|_| s.is_running()),
            |u| format::bytes(u.rss_bytes),
        )));
    } else {
        cells.push(Cell::from(gpu));
    }
    cells
}

fn widths(wide: bool, state_w: u16) -> Vec<Constraint> {
    if wide {
        vec![
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(state_w),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(10),
        ]
    } else {
        vec![
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Min(10),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(11),
            Constraint::Length(8),
        ]
    }
}

fn state_text(s: &ServerStatus, busy: &str) -> String {
    match (s.state.is_running(), s.exit_text()) {
        (false, Some(t)) if s.state != crate::supervisor::State::Stopped => {
            format!("{} · {t}{busy}", s.state)
        }
        _ => format!("{}{busy}", s.state),
    }
}

fn details(f: &mut Frame, app: &App, area: Rect) {
    let list = app.visible_servers();
    let Some(s) = list.get(app.servers.selected) else {
        f.render_widget(
            Paragraph::new("No server profiles: add some under `servers:` in dashboard.yaml.")
                .block(Block::bordered()),
            area,
        );
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("argv  ", dim()),
        Span::raw(s.argv.join(" ")),
    ])];
    lines.push(Line::from(vec![
        Span::styled("log   ", dim()),
        Span::raw(s.log_path.clone()),
    ]));
    if let Some(c) = &s.cluster {
        lines.push(Line::from(vec![
            Span::styled("where ", dim()),
            Span::raw(format!(
                "cluster {c} · node {} · route http://{}:{}",
                s.node.as_deref().unwrap_or("-"),
                if s.host.is_empty() { "?" } else { &s.host },
                s.port
            )),
        ]));
    }
    if let Some(why) = &s.failure {
        lines.push(Line::from(vec![
            Span::styled("why   ", dim()),
            Span::styled(why.clone(), error_style()),
        ]));
    }
    if let Some(w) = &s.fit_warning {
        lines.push(Line::from(vec![
            Span::styled("fit   ", dim()),
            Span::styled(
                w.clone(),
                ratatui::style::Style::new().fg(ratatui::style::Color::Yellow),
            ),
        ]));
    }
    if let Some(m) = &s.message {
        lines.push(Line::from(vec![
            Span::styled("note  ", dim()),
            Span::styled(m.clone(), error_style()),
        ]));
    }
    if let Some(t) = s.ready_after_s {
        lines.push(Line::from(vec![
            Span::styled("ready ", dim()),
            Span::raw(format!("after {t:.1} s")),
        ]));
    }
    if let Some(ring) = app.logs.rings.get(&s.name) {
        let room = (area.height as usize).saturating_sub(2 + lines.len());
        let skip = ring.len().saturating_sub(room);
        for l in ring.iter().skip(skip) {
            lines.push(Line::from(Span::styled(l.clone(), Style::new())));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(format!(" {} ", s.name), title_style()))),
        area,
    );
}
