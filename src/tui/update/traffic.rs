//! The Traffic pane's state changes: the gateways' views arriving (their new event lines
//! passed on to the console's log), pausing the list, opening a request, moving between
//! gateways.
use super::super::action::Effect;
use super::super::app::*;
use std::sync::Arc;

/// Takes the gateways' latest views; their new event lines go to the console's log.
pub(super) fn traffic_views(
    app: &mut App,
    views: Arc<Vec<crate::traffic::GatewayView>>,
    fx: &mut Vec<Effect>,
) {
    // A row the operator moved to stays selected as newer ones arrive above it.
    let keep = (app.traffic.selected > 0)
        .then(|| app.traffic_rows().get(app.traffic.selected).map(|r| r.id))
        .flatten();
    let t = &mut app.traffic;
    t.lines_seen.resize(views.len(), 0);
    let mut lines = Vec::new();
    for (v, seen) in views.iter().zip(t.lines_seen.iter_mut()) {
        let new = v.lines_total.saturating_sub(*seen) as usize;
        lines.extend(
            v.lines
                .iter()
                .skip(v.lines.len().saturating_sub(new))
                .map(|l| format!("traffic {}: {}", v.addr, l.text)),
        );
        *seen = v.lines_total;
    }
    if !lines.is_empty() {
        fx.push(Effect::Log(lines));
    }
    t.views = views;
    t.gateway = t.gateway.min(t.views.len().saturating_sub(1));
    let rows = app.traffic_rows();
    let at = keep.and_then(|id| rows.iter().position(|r| r.id == id));
    let n = rows.len();
    app.traffic.selected = at.unwrap_or(app.traffic.selected.min(n.saturating_sub(1)));
}

/// `p`: the list stops where it is (the figures above it go on); again, it is live.
pub(super) fn toggle_pause(app: &mut App) {
    let t = &mut app.traffic;
    if t.paused.take().is_some() {
        app.notify("traffic list live again", false);
        return;
    }
    t.paused = Some(
        t.view()
            .map(|v| v.rows().cloned().collect())
            .unwrap_or_default(),
    );
    app.notify(
        "traffic list paused (p: live again); the counters go on",
        false,
    );
}

/// Enter: the selected request opens (Esc closes it).
pub(super) fn open_request(app: &mut App) {
    let id = app.traffic_rows().get(app.traffic.selected).map(|r| r.id);
    match id {
        Some(id) => app.traffic.open = Some(id),
        None => app.notify("no request selected", true),
    }
}

/// `]` and `[`: the next or previous gateway.
pub(super) fn cycle_gateway(app: &mut App, forward: bool) {
    let n = app.traffic.views.len();
    if n < 2 {
        return;
    }
    let t = &mut app.traffic;
    t.gateway = if forward {
        (t.gateway + 1) % n
    } else {
        (t.gateway + n - 1) % n
    };
    t.selected = 0;
    t.open = None;
    t.paused = None;
}

/// The route the pane's `c` and `b` act on: the selected request's (the one that served it).
pub(super) fn traffic_route(app: &App) -> Option<String> {
    app.traffic_rows()
        .get(app.traffic.selected)
        .map(|r| r.served_by.clone().unwrap_or_else(|| r.route.clone()))
}
