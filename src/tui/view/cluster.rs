//! Cluster: per configured cluster, its nodes (alive, head, address, CPUs, memory and GPUs in
//! use of their totals, each GPU's utilisation and memory) and its jobs: our profiles first,
//! then everyone else's. An unreachable head keeps its last known tables under the error.
use super::common::*;
use crate::cluster::{ClusterJob, ClusterView, JobStatus};
use crate::format;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let views = &app.cluster.views;
    if views.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No cluster is configured, or none has been read yet. Add one under `clusters:` in dashboard.yaml, e.g. farm: {kind: ray, address: http://HEAD:8265}; a profile with `cluster: farm` then runs as a Ray job.",
            )
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(Span::styled(" Cluster ", title_style()))),
            area,
        );
        return;
    }
    let band = |v: &ClusterView| v.nodes.len().max(1) as u16 + 3 + u16::from(v.error.is_some());
    let node_rows: usize = views.iter().map(|v| band(v) as usize).sum();
    let nodes_h = (node_rows as u16).min(area.height.saturating_sub(6).max(4));
    let [top, bottom] =
        Layout::vertical([Constraint::Length(nodes_h), Constraint::Min(4)]).areas(area);
    let bands = Layout::vertical(views.iter().map(|v| Constraint::Length(band(v)))).split(top);
    for (v, band) in views.iter().zip(bands.iter()) {
        nodes(f, app, v, *band);
    }
    jobs(f, app, bottom);
}

fn reading(app: &App, v: &ClusterView) -> (String, Style) {
    match &v.error {
        Some(_) => (
            format!(
                "UNREACHABLE · last known state, read {}",
                v.read_at
                    .map(|t| format!("{} ago", format::duration_s((app.now - t).max(0.0))))
                    .unwrap_or_else(|| "never".into())
            ),
            error_style(),
        ),
        None => (
            format!(
                "Ray {} · {} of {} nodes alive",
                v.version.as_deref().unwrap_or("?"),
                v.nodes.iter().filter(|n| n.alive).count(),
                v.nodes.len()
            ),
            title_style(),
        ),
    }
}

fn nodes(f: &mut Frame, app: &App, v: &ClusterView, area: Rect) {
    let (what, style) = reading(app, v);
    let title = Line::from(vec![
        Span::styled(format!(" {} · {} · ", v.cluster, v.address), title_style()),
        Span::styled(format!("{what} "), style),
    ]);
    let header = Row::new([
        "NODE",
        "STATE",
        "ADDRESS",
        "CPU",
        "MEMORY",
        "GPU",
        "GPUS (util · memory)",
    ])
    .style(title_style());
    let rows = v.nodes.iter().map(|n| {
        let gpus = if n.gpus.is_empty() {
            "-".to_string()
        } else {
            n.gpus
                .iter()
                .map(|g| {
                    format!(
                        "{}:{}·{}",
                        g.index,
                        format::opt(g.utilization_pct, |u| format!("{u}%")),
                        match (g.memory_used_bytes, g.memory_total_bytes) {
                            (Some(u), Some(t)) => format::bytes_of(u, t),
                            _ => "-".into(),
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        let state = if n.alive { "alive" } else { "DEAD" };
        Row::new([
            Cell::from(format!(
                "{}{}",
                n.label(),
                if n.head { " (head)" } else { "" }
            )),
            Cell::from(Span::styled(
                state,
                if n.alive {
                    Style::new().fg(Color::Green)
                } else {
                    error_style()
                },
            )),
            Cell::from(n.address.clone()),
            Cell::from(format!(
                "{} / {}",
                amount(n.cpus_used),
                amount(n.cpus_total)
            )),
            Cell::from(format::bytes_of(n.memory_used_bytes, n.memory_total_bytes)),
            Cell::from(format!(
                "{} / {}",
                amount(n.gpus_used),
                amount(n.gpus_total)
            )),
            Cell::from(gpus),
        ])
    });
    let widths = [
        Constraint::Length(14),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(22),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let table_area = match &v.error {
        Some(e) => {
            let [why, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            f.render_widget(Paragraph::new(Span::styled(e.clone(), error_style())), why);
            rest
        }
        None => inner,
    };
    f.render_widget(Table::new(rows, widths).header(header), table_area);
}

fn amount(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn job_style(s: JobStatus) -> Style {
    match s {
        JobStatus::Running => Style::new().fg(Color::Green),
        JobStatus::Pending => Style::new().fg(Color::Yellow),
        JobStatus::Failed => error_style(),
        JobStatus::Stopped | JobStatus::Succeeded => dim(),
    }
}

fn node_of(app: &App, j: &ClusterJob) -> String {
    let Some(id) = &j.node_id else {
        return "-".into();
    };
    app.cluster
        .views
        .iter()
        .flat_map(|v| v.nodes.iter())
        .find(|n| &n.id == id)
        .map(|n| n.label())
        .unwrap_or_else(|| id.chars().take(8).collect())
}

fn jobs(f: &mut Frame, app: &App, area: Rect) {
    let rows_data = app.cluster_rows();
    let header = Row::new([
        "PROFILE",
        "STATE",
        "JOB",
        "STATUS",
        "NODE",
        "AGE",
        "ENTRYPOINT / NOTE",
    ])
    .style(title_style());
    let rows = rows_data.iter().enumerate().map(|(i, r)| {
        let (profile, state) = match r.profile {
            Some(s) => {
                let busy = app.servers.busy_note(&s.name);
                (
                    Cell::from(s.name.clone()),
                    Cell::from(Span::styled(
                        format!("{}{busy}", s.state),
                        state_style(s.state),
                    )),
                )
            }
            None => {
                let theirs = r
                    .job
                    .and_then(|j| j.profile())
                    .map(|p| format!("({p})"))
                    .unwrap_or_else(|| "-".into());
                (Cell::from(Span::styled(theirs, dim())), Cell::from(""))
            }
        };
        let (id, status, node, age, what) = match r.job {
            Some(j) => {
                let age = j
                    .start_ms
                    .map(|s| format::duration_s((app.now - s as f64 / 1000.0).max(0.0)))
                    .unwrap_or_else(|| "-".into());
                // Our rows say what the state means (pending reason, Ray's message); others
                // show what they run.
                let what = match r.profile.and_then(|s| s.message.clone()) {
                    Some(m) => m,
                    None => j.entrypoint.clone(),
                };
                (
                    Cell::from(j.id.clone()),
                    Cell::from(Span::styled(j.status.as_str(), job_style(j.status))),
                    Cell::from(node_of(app, j)),
                    Cell::from(age),
                    Cell::from(what),
                )
            }
            None => (
                Cell::from(Span::styled("no job", dim())),
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(format!("on {} · s starts it", r.cluster)),
            ),
        };
        let row = Row::new([profile, state, id, status, node, age, what]);
        if i == app.cluster.selected {
            row.style(selected())
        } else {
            row
        }
    });
    let ours = rows_data.iter().filter(|r| r.profile.is_some()).count();
    let title = format!(
        " Jobs · {ours} profiles of this config · {} others ",
        rows_data.len() - ours
    );
    let widths = [
        Constraint::Length(12),
        Constraint::Length(14),
        Constraint::Length(26),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Fill(1),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(Span::styled(title, title_style()))),
        area,
    );
}
