//! GPU: per device, utilisation and memory as gauges with their history, temperature, power,
//! clock, fan, and the processes holding memory (matched to servers). Every "no GPU" status
//! gets a panel that says what it means and what to do.
use super::common::*;
use crate::format;
use crate::telemetry::gpu::{GpuDevice, GpuSample, GpuStatus};
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Wrap};
use ratatui::Frame;

fn advice(s: &GpuStatus) -> &'static str {
    match s {
        GpuStatus::NoLibrary => "This machine has no NVIDIA driver (libnvidia-ml.so.1 cannot be loaded). vLLM's CPU build and the simulator run without one. To watch a GPU node from here, add its DCGM exporter: gpu_sources: [{name: node2, url: http://node2:9400/metrics}].",
        GpuStatus::DriverNotLoaded => "The driver library is installed but the kernel module is not loaded: load it (modprobe nvidia) or reboot.",
        GpuStatus::DriverMismatch => "The driver library and the kernel module are different versions, usually after a driver update: reboot, or reload the nvidia module.",
        GpuStatus::NoPermission => "This user may not query the driver: run with access to /dev/nvidiactl and /dev/nvidia*.",
        GpuStatus::GpuLost => "A GPU fell off the bus or needs a reset: look for Xid errors in the kernel log (dmesg); the device needs a reset or a reboot.",
        GpuStatus::NoDevices => "The driver sees no GPU: check CUDA_VISIBLE_DEVICES and, in a container, that the devices are passed in (--gpus).",
        GpuStatus::Unreachable(_) => "The DCGM exporter did not answer: check its URL under gpu_sources and that the node is up.",
        GpuStatus::Error(_) => "NVML reported an unexpected error.",
        GpuStatus::Ok => "",
    }
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let samples = &app.gpu.samples;
    if samples.is_empty() {
        f.render_widget(
            Paragraph::new("Reading the GPUs…").block(Block::bordered().title(" GPU ")),
            area,
        );
        return;
    }
    // Each source gets a band: a short one for a status, the rest shared by devices.
    let heights: Vec<Constraint> = samples
        .iter()
        .map(|s| {
            if s.status.is_ok() {
                Constraint::Min(8)
            } else {
                Constraint::Length(6)
            }
        })
        .collect();
    let bands = Layout::vertical(heights).split(area);
    for (s, band) in samples.iter().zip(bands.iter()) {
        if s.status.is_ok() {
            devices(f, app, s, *band);
        } else {
            status_panel(f, s, *band);
        }
    }
}

fn status_panel(f: &mut Frame, s: &GpuSample, area: Rect) {
    // A cluster node (`farm/node2`) is read from Ray's node table, not from a driver here.
    let on_cluster = s.source.contains('/');
    let (what, advice) = match (&s.status, on_cluster) {
        (GpuStatus::NoDevices, true) => (
            "no GPU: Ray's node table lists none on this node".to_string(),
            "The node was started without GPUs (ray start --num-gpus=0), or it has none. Ray lists a node's GPUs once its driver sees them.",
        ),
        (st, _) => (st.describe(), advice(st)),
    };
    let lines = vec![
        Line::from(Span::styled(what, Style::new().fg(Color::Yellow))),
        Line::from(advice),
    ];
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(Span::styled(
                format!(" GPU · {} · {} ", s.source, s.status.word()),
                title_style(),
            ))),
        area,
    );
}

fn devices(f: &mut Frame, app: &App, s: &GpuSample, area: Rect) {
    let n = s.devices.len().max(1);
    // Two devices side by side when there is room.
    let per_row = if area.width >= 160 && n > 1 { 2 } else { 1 };
    let rows = n.div_ceil(per_row);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    for (r, row) in row_areas.iter().enumerate() {
        let cols =
            Layout::horizontal(vec![Constraint::Ratio(1, per_row as u32); per_row]).split(*row);
        for (c, cell) in cols.iter().enumerate() {
            if let Some(d) = s.devices.get(r * per_row + c) {
                device(f, app, s, d, *cell);
            }
        }
    }
}

fn device(f: &mut Frame, app: &App, s: &GpuSample, d: &GpuDevice, area: Rect) {
    let title = format!(
        " {}GPU {} · {} ",
        if s.source == "local" {
            String::new()
        } else {
            format!("{} · ", s.source)
        },
        d.index,
        d.name.as_deref().unwrap_or("?")
    );
    let block = Block::bordered().title(Span::styled(title, title_style()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if let Some(e) = &d.error {
        f.render_widget(
            Paragraph::new(Span::styled(e.clone(), error_style())),
            inner,
        );
        return;
    }
    let hist = app.gpu.history_of(&s.source, d.index);
    let [facts, util, util_h, mem, mem_h, procs] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(facts_line(d)), facts);
    let util_pct = d.utilization_gpu_pct.map(f64::from);
    f.render_widget(
        gauge(
            "util",
            util_pct.map(|u| u / 100.0),
            &format::opt(d.utilization_gpu_pct, |u| format!("{u}%")),
        ),
        util,
    );
    if let Some(h) = hist {
        f.render_widget(
            Paragraph::new(Span::styled(
                spark(&h.util, util_h.width as usize, Some(100.0)),
                Style::new().fg(Color::Cyan),
            )),
            util_h,
        );
        f.render_widget(
            Paragraph::new(Span::styled(
                spark(&h.memory, mem_h.width as usize, Some(1.0)),
                Style::new().fg(Color::Magenta),
            )),
            mem_h,
        );
    }
    let mem_label = match (d.memory_used_bytes, d.memory_total_bytes) {
        (Some(u), Some(t)) => format::bytes_of(u, t),
        (Some(u), None) => format::bytes(u),
        _ => "-".into(),
    };
    f.render_widget(gauge("mem ", d.memory_fraction(), &mem_label), mem);
    f.render_widget(Paragraph::new(process_lines(d)), procs);
}

/// Temperature, power, SM clock, fan and UUID on one line.
fn facts_line(d: &GpuDevice) -> Line<'static> {
    let power = match (d.power_draw_w, d.power_limit_w) {
        (Some(p), Some(l)) => format!("{p:.0}/{l:.0} W"),
        (Some(p), None) => format!("{p:.0} W"),
        _ => "- W".into(),
    };
    Line::from(vec![
        Span::raw(format!(
            "temp {}  ",
            format::opt(d.temperature_c, |t| format!("{t}°C"))
        )),
        Span::raw(format!("power {power}  ")),
        Span::raw(format!(
            "SM {}  ",
            format::opt(d.sm_clock_mhz, |c| format!("{c} MHz"))
        )),
        Span::raw(format!(
            "fan {}  ",
            format::opt(d.fan_pct, |v| format!("{v}%"))
        )),
        Span::styled(format::clip(d.uuid.as_deref().unwrap_or(""), 20), dim()),
    ])
}

/// The processes holding memory on the device, ours named by server.
fn process_lines(d: &GpuDevice) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for p in &d.processes {
        let who = p
            .server
            .as_ref()
            .map(|s| format!("server {s}"))
            .unwrap_or_else(|| "not ours".into());
        lines.push(Line::from(vec![
            Span::raw(format!(
                "pid {:<8} {:<16} ",
                p.pid,
                format::clip(p.name.as_deref().unwrap_or("?"), 16)
            )),
            Span::raw(format!(
                "{:>10}  ",
                format::opt(p.used_memory_bytes, format::bytes)
            )),
            Span::styled(
                who,
                if p.server.is_some() {
                    Style::new().fg(Color::Green)
                } else {
                    dim()
                },
            ),
        ]));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "no process holds memory here",
            dim(),
        )));
    }
    lines
}

fn gauge<'a>(label: &str, ratio: Option<f64>, text: &str) -> Gauge<'a> {
    let r = ratio.unwrap_or(0.0).clamp(0.0, 1.0);
    let color = if r > 0.9 {
        Color::Red
    } else if r > 0.7 {
        Color::Yellow
    } else {
        Color::Green
    };
    Gauge::default()
        .ratio(r)
        .label(format!("{label} {text}"))
        .gauge_style(Style::new().fg(color).bg(Color::Black))
}
