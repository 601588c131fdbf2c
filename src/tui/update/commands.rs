//! What a key command does: panes, moves, quitting, and the per-pane commands that need no
//! form of their own.
use super::super::action::Effect;
use super::super::app::*;
use super::*;

pub(super) fn go(app: &mut App, p: Pane) {
    if app.pane != p {
        app.history.push(app.pane);
        if app.history.len() > 32 {
            app.history.remove(0);
        }
        app.pane = p;
    }
}

pub(super) fn request_quit(app: &mut App, fx: &mut Vec<Effect>) {
    let running = app.running_started_here();
    if running.is_empty() {
        quit(app, fx, Vec::new());
    } else {
        app.overlay = Overlay::Quit { running };
    }
}

pub(super) fn quit(app: &mut App, fx: &mut Vec<Effect>, stop: Vec<String>) {
    app.overlay = Overlay::None;
    if app.bench.running.is_some() {
        fx.push(Effect::BenchControl(Control::Cancel));
    }
    if let Some(s) = &app.chat.streaming {
        fx.push(Effect::ChatCancel(s.id));
    }
    fx.push(Effect::Quit { stop });
    app.quit = true;
}

pub(super) fn read_only(app: &mut App, what: &str) -> bool {
    if app.read_only {
        app.notify(format!("read-only console: cannot {what}"), true);
    }
    app.read_only
}

/// The server the pane's keys act on: the Servers pane's row, or the Cluster pane's row when
/// it is one of our profiles.
pub(super) fn selected_server(app: &App) -> Option<String> {
    if app.pane == Pane::Cluster {
        return app
            .cluster_rows()
            .get(app.cluster.selected)
            .and_then(|r| r.profile)
            .map(|s| s.name.clone());
    }
    app.visible_servers()
        .get(app.servers.selected)
        .map(|s| s.name.clone())
}

pub(super) fn selected_route(app: &App) -> Option<String> {
    if app.pane == Pane::Traffic {
        return traffic_route(app);
    }
    app.visible_routes()
        .get(app.routes.selected)
        .map(|r| r.route.clone())
}

pub(super) fn run_cmd(app: &mut App, fx: &mut Vec<Effect>, cmd: Cmd) {
    if app.pane == Pane::Models && super::models::models_cmd(app, fx, cmd) {
        return;
    }
    match cmd {
        Cmd::Quit => request_quit(app, fx),
        Cmd::Help => app.overlay = Overlay::Help,
        Cmd::CommandLine => app.typing = Typing::Command(String::new()),
        Cmd::Filter => {
            app.typing = Typing::Filter(app.filters.get(&app.pane).cloned().unwrap_or_default())
        }
        Cmd::NextPane => go(app, PANES[(app.pane.index() + 1) % PANES.len()]),
        Cmd::PrevPane => go(
            app,
            PANES[(app.pane.index() + PANES.len() - 1) % PANES.len()],
        ),
        Cmd::GoPane(p) => go(app, p),
        Cmd::Back => back(app, fx),
        Cmd::Up | Cmd::Down | Cmd::Top | Cmd::Bottom | Cmd::PageUp | Cmd::PageDown => mv(app, cmd),
        Cmd::Start | Cmd::Stop | Cmd::Restart => server_cmd(app, fx, cmd),
        Cmd::ShowLogs => show_logs(app),
        Cmd::Probe => {
            let r = selected_route(app);
            app.notify(
                format!("probing {}", r.as_deref().unwrap_or("every route")),
                false,
            );
            fx.push(Effect::Probe(r));
        }
        Cmd::ChatRoute => route_to(app, Pane::Chat),
        Cmd::BenchRoute => route_to(app, Pane::Bench),
        Cmd::FocusInput => app.typing = Typing::ChatMessage,
        Cmd::NextRoute | Cmd::PrevRoute => {
            let n = app.chat.routes.len().max(1);
            app.chat.route = if cmd == Cmd::NextRoute {
                (app.chat.route + 1) % n
            } else {
                (app.chat.route + n - 1) % n
            };
        }
        Cmd::Settings => {
            app.chat.settings_open = true;
            app.chat.settings_field = 0;
            let f = 0;
            app.typing = Typing::ChatSetting(f, chat_setting_text(app, f));
        }
        Cmd::Save => save(app, fx),
        Cmd::NewChat => new_chat(app),
        Cmd::Run => run_bench(app, fx),
        Cmd::Edit => edit_bench_field(app),
        Cmd::More | Cmd::Less => more_less(app, fx, cmd == Cmd::More),
        Cmd::Left | Cmd::Right => cycle_bench_field(app, cmd == Cmd::Right),
        Cmd::Baseline => keep_baseline(app),
        Cmd::Follow => {
            app.logs.follow = !app.logs.follow;
            if app.logs.follow {
                app.logs.back = 0;
            }
        }
        Cmd::Wrap => app.logs.wrap = !app.logs.wrap,
        Cmd::Open => open_request(app),
        Cmd::Pause => toggle_pause(app),
        Cmd::NextServer | Cmd::PrevServer if app.pane == Pane::Traffic => {
            cycle_gateway(app, cmd == Cmd::NextServer)
        }
        Cmd::NextServer | Cmd::PrevServer => cycle_log_server(app, cmd == Cmd::NextServer),
        Cmd::Rescan => {}
    }
}

/// Start, stop (asks first) or restart the selected server.
fn server_cmd(app: &mut App, fx: &mut Vec<Effect>, cmd: Cmd) {
    let Some(name) = selected_server(app) else {
        if app.pane == Pane::Cluster {
            app.notify(
                "not one of this config's profiles: only their jobs are started and stopped here",
                true,
            );
        }
        return;
    };
    match cmd {
        Cmd::Start => server_op(app, fx, Op::Start, name),
        Cmd::Restart => server_op(app, fx, Op::Restart, name),
        _ => {
            if !read_only(app, "stop servers") {
                app.overlay = Overlay::ConfirmStop(name);
            }
        }
    }
}

fn show_logs(app: &mut App) {
    if let Some(name) = selected_server(app) {
        app.logs.server = Some(name);
        app.logs.follow = true;
        app.logs.back = 0;
        go(app, Pane::Logs);
    }
}

/// The selected route, chosen in the Chat or Bench pane, which then opens.
fn route_to(app: &mut App, pane: Pane) {
    let Some(r) = selected_route(app) else {
        return;
    };
    if let Some(i) = app.chat.routes.iter().position(|x| *x == r) {
        if pane == Pane::Bench {
            app.bench.form.route = i;
            app.bench.form.route_chosen = true;
        } else {
            app.chat.route = i;
        }
    }
    go(app, pane);
}

fn new_chat(app: &mut App) {
    if app.chat.streaming.is_some() {
        app.notify("an answer is still streaming (esc cancels it)", true);
    } else {
        app.chat.conv.turns.clear();
        app.chat.back = 0;
        app.notify("new conversation", false);
    }
}

fn keep_baseline(app: &mut App) {
    match app.bench.results.first().cloned() {
        Some(r) => {
            app.notify(format!("baseline: this run on {}", r.label), false);
            app.bench.baseline = Some(r);
        }
        None => app.notify("no result yet to keep as the baseline", true),
    }
}

/// The Logs pane's next (or previous) server.
fn cycle_log_server(app: &mut App, forward: bool) {
    let names: Vec<String> = app.servers.list.iter().map(|s| s.name.clone()).collect();
    if names.is_empty() {
        return;
    }
    let cur = app
        .log_server()
        .and_then(|c| names.iter().position(|n| *n == c))
        .unwrap_or(0);
    let n = names.len();
    let next = if forward {
        (cur + 1) % n
    } else {
        (cur + n - 1) % n
    };
    app.logs.server = Some(names[next].clone());
    app.logs.back = 0;
    app.logs.follow = true;
}

pub(super) fn back(app: &mut App, fx: &mut Vec<Effect>) {
    if app.pane == Pane::Chat {
        if let Some(s) = app.chat.streaming.take() {
            fx.push(Effect::ChatCancel(s.id));
            app.chat.conv.turns.push(Turn {
                user: s.user,
                answer: s.text,
                meta: crate::session::AnswerMeta {
                    route: s.route,
                    served_by: s.served_by,
                    attempts: s.attempts,
                    cancelled: true,
                    ..Default::default()
                },
            });
            app.notify("answer cancelled", false);
            return;
        }
    }
    if app.pane == Pane::Bench && app.bench.running.is_some() {
        fx.push(Effect::BenchControl(Control::Cancel));
        if let Some(r) = app.bench.running.as_mut() {
            r.then = None;
        }
        if let Some(s) = app.bench.find_max.as_mut() {
            s.stopped = true;
        }
        app.notify(
            "stopping the load test; requests in flight count as cancelled",
            false,
        );
        return;
    }
    if app.pane == Pane::Traffic && app.traffic.open.take().is_some() {
        return;
    }
    if app.filters.remove(&app.pane).is_some() {
        return;
    }
    if let Some(p) = app.history.pop() {
        app.pane = p;
    }
}

pub(super) fn mv(app: &mut App, cmd: Cmd) {
    let page = 10usize;
    let step = |sel: &mut usize, len: usize| {
        let last = len.saturating_sub(1);
        *sel = match cmd {
            Cmd::Up => sel.saturating_sub(1),
            Cmd::Down => (*sel + 1).min(last),
            Cmd::Top => 0,
            Cmd::Bottom => last,
            Cmd::PageUp => sel.saturating_sub(page),
            _ => (*sel + page).min(last),
        };
    };
    match app.pane {
        Pane::Servers => {
            let n = app.visible_servers().len();
            step(&mut app.servers.selected, n);
        }
        Pane::Routes => {
            let n = app.visible_routes().len();
            step(&mut app.routes.selected, n);
        }
        Pane::Bench => {
            if matches!(cmd, Cmd::Up | Cmd::Down | Cmd::Top | Cmd::Bottom) {
                step(&mut app.bench.field, BENCH_FIELDS.len());
            }
        }
        Pane::Chat => {
            // Scrolling back through the conversation (0 = the end).
            let b = &mut app.chat.back;
            *b = match cmd {
                Cmd::Up => *b + 1,
                Cmd::Down => b.saturating_sub(1),
                Cmd::PageUp => *b + page,
                Cmd::PageDown => b.saturating_sub(page),
                Cmd::Top => usize::MAX / 2,
                _ => 0,
            };
        }
        Pane::Logs => {
            let len = app
                .log_server()
                .and_then(|s| app.logs.rings.get(&s).map(LogRing::len))
                .unwrap_or(0);
            let b = &mut app.logs.back;
            *b = match cmd {
                Cmd::Up => (*b + 1).min(len),
                Cmd::Down => b.saturating_sub(1),
                Cmd::PageUp => (*b + page).min(len),
                Cmd::PageDown => b.saturating_sub(page),
                Cmd::Top => len,
                _ => 0,
            };
            app.logs.follow = app.logs.back == 0;
        }
        Pane::Cluster => {
            let n = app.cluster_rows().len();
            step(&mut app.cluster.selected, n);
        }
        Pane::Traffic => {
            let n = app.traffic_rows().len();
            step(&mut app.traffic.selected, n);
        }
        // The Models pane moves its own selection (update::models).
        Pane::Gpu | Pane::Models => {}
    }
}
