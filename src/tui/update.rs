//! `update(&mut App, Action) -> Vec<Effect>`: every change of the console's state, with no
//! I/O and no waiting, so it is tested without a terminal.
use super::action::{Action, Effect};
use super::app::*;
use super::keymap::{Cmd, Lookup};
use crate::bench::{Control, Load, Plan, Progress, Stop, Workload};
use crate::session::{ChatEvent, Turn};
use crate::supervisor::engine::{Op, SupEvent};
use crate::supervisor::logs::LogRing;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    match action {
        Action::Key(k) => key(app, k, &mut fx),
        Action::Paste(s) => paste(app, &s),
        Action::Resize(..) => {}
        Action::Tick(now) => {
            app.now = now;
            if app.notice.as_ref().is_some_and(|n| n.until <= now) {
                app.notice = None;
            }
        }
        Action::Sup(ev) => sup_event(app, ev, &mut fx),
        Action::Gpu(v) => app.gpu = *v,
        Action::Host(v) => app.host = *v,
        Action::Routes(t) => {
            app.routes.table = *t;
            app.routes.selected = app
                .routes
                .selected
                .min(app.routes.table.routes.len().saturating_sub(1));
            follow_up_route(app);
        }
        Action::Chat(ev) => chat_event(app, ev),
        Action::BenchProgress(id, p) => {
            if let Some(r) = app.bench.running.as_mut().filter(|r| r.id == id) {
                r.progress = *p;
            }
        }
        Action::BenchDone(id, result) => bench_done(app, id, result, &mut fx),
        Action::Saved(r) => match r {
            Ok(path) => app.notify(format!("saved {path}"), false),
            Err(e) => app.notify(e, true),
        },
        Action::BaselineLoaded(r) => match r {
            Ok(b) => {
                app.notify(format!("baseline: {} ({})", b.label, b.date), false);
                app.bench.baseline = Some(*b);
            }
            Err(e) => app.notify(format!("baseline: {e}"), true),
        },
    }
    fx
}

fn is_ctrl_c(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('C'))
}

fn key(app: &mut App, k: KeyEvent, fx: &mut Vec<Effect>) {
    if is_ctrl_c(&k) {
        // A second Ctrl-C in the quit dialog leaves the servers running and goes.
        if matches!(app.overlay, Overlay::Quit { .. }) {
            quit(app, fx, Vec::new());
        } else {
            request_quit(app, fx);
        }
        return;
    }
    match app.overlay.clone() {
        Overlay::None => {}
        Overlay::Help => {
            app.overlay = Overlay::None;
            return;
        }
        Overlay::Quit { running } => {
            match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => quit(app, fx, running),
                KeyCode::Char('l') | KeyCode::Char('L') => quit(app, fx, Vec::new()),
                KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N') => {
                    app.overlay = Overlay::None
                }
                _ => {}
            }
            return;
        }
        Overlay::ConfirmStop(name) => {
            match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    app.overlay = Overlay::None;
                    server_op(app, fx, Op::Stop, name);
                }
                KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N') => {
                    app.overlay = Overlay::None
                }
                _ => {}
            }
            return;
        }
    }
    match app.typing.clone() {
        Typing::None => {}
        Typing::Command(mut buf) => {
            match line_edit(&mut buf, &k) {
                LineKey::Enter => {
                    app.typing = Typing::None;
                    command(app, fx, buf.trim());
                }
                LineKey::Esc => app.typing = Typing::None,
                LineKey::Changed | LineKey::Other => app.typing = Typing::Command(buf),
            }
            return;
        }
        Typing::Filter(mut buf) => {
            match line_edit(&mut buf, &k) {
                LineKey::Enter => app.typing = Typing::None,
                LineKey::Esc => {
                    app.typing = Typing::None;
                    app.filters.remove(&app.pane);
                }
                LineKey::Changed | LineKey::Other => {
                    app.filters.insert(app.pane, buf.clone());
                    app.typing = Typing::Filter(buf);
                    app.servers.selected = 0;
                    app.routes.selected = 0;
                }
            }
            return;
        }
        Typing::ChatMessage => {
            chat_typing(app, fx, k);
            return;
        }
        Typing::ChatSetting(field, mut buf) => {
            match line_edit(&mut buf, &k) {
                LineKey::Enter => {
                    apply_chat_setting(app, field, &buf);
                    app.typing = Typing::None;
                    app.chat.settings_open = false;
                }
                LineKey::Esc => {
                    app.typing = Typing::None;
                    app.chat.settings_open = false;
                }
                LineKey::Other if matches!(k.code, KeyCode::Tab | KeyCode::Down | KeyCode::Up) => {
                    if apply_chat_setting(app, field, &buf) {
                        let n = CHAT_SETTINGS.len();
                        let next = if k.code == KeyCode::Up {
                            (field + n - 1) % n
                        } else {
                            (field + 1) % n
                        };
                        app.chat.settings_field = next;
                        app.typing = Typing::ChatSetting(next, chat_setting_text(app, next));
                    }
                }
                _ => app.typing = Typing::ChatSetting(field, buf),
            }
            return;
        }
        Typing::BenchField(field, mut buf) => {
            match line_edit(&mut buf, &k) {
                LineKey::Enter => {
                    if apply_bench_field(app, field, &buf) {
                        app.typing = Typing::None;
                    }
                }
                LineKey::Esc => app.typing = Typing::None,
                _ => app.typing = Typing::BenchField(field, buf),
            }
            return;
        }
    }
    let Some(cmd) = app.keys.lookup(app.pane.ctx(), &k) else {
        return;
    };
    run_cmd(app, fx, cmd);
}

enum LineKey {
    Enter,
    Esc,
    Changed,
    Other,
}

/// One-line editing: characters, backspace, ctrl-u to clear.
fn line_edit(buf: &mut String, k: &KeyEvent) -> LineKey {
    match k.code {
        KeyCode::Enter => LineKey::Enter,
        KeyCode::Esc => LineKey::Esc,
        KeyCode::Backspace => {
            buf.pop();
            LineKey::Changed
        }
        KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
            buf.clear();
            LineKey::Changed
        }
        KeyCode::Char(c)
            if !k.modifiers.contains(KeyModifiers::CONTROL)
                && !k.modifiers.contains(KeyModifiers::ALT) =>
        {
            buf.push(c);
            LineKey::Changed
        }
        _ => LineKey::Other,
    }
}

fn paste(app: &mut App, s: &str) {
    match &mut app.typing {
        Typing::ChatMessage => {
            app.chat.input.insert_str(s);
        }
        Typing::Command(b)
        | Typing::Filter(b)
        | Typing::ChatSetting(_, b)
        | Typing::BenchField(_, b) => {
            b.push_str(&s.replace(['\n', '\r'], " "));
        }
        Typing::None => {}
    }
}

fn go(app: &mut App, p: Pane) {
    if app.pane != p {
        app.history.push(app.pane);
        if app.history.len() > 32 {
            app.history.remove(0);
        }
        app.pane = p;
    }
}

fn request_quit(app: &mut App, fx: &mut Vec<Effect>) {
    let running = app.running_started_here();
    if running.is_empty() {
        quit(app, fx, Vec::new());
    } else {
        app.overlay = Overlay::Quit { running };
    }
}

fn quit(app: &mut App, fx: &mut Vec<Effect>, stop: Vec<String>) {
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

fn read_only(app: &mut App, what: &str) -> bool {
    if app.read_only {
        app.notify(format!("read-only console: cannot {what}"), true);
    }
    app.read_only
}

fn server_op(app: &mut App, fx: &mut Vec<Effect>, op: Op, name: String) {
    if read_only(app, &format!("{} servers", op.verb())) {
        return;
    }
    if let Some(b) = app.servers.busy.get(&name) {
        app.notify(format!("{name}: a {} is still running", b.verb()), true);
        return;
    }
    if matches!(op, Op::Start | Op::Restart) {
        app.servers.started_here.insert(name.clone());
    }
    app.servers.busy.insert(name.clone(), op);
    app.notify(format!("{name}: {}…", op.verb()), false);
    fx.push(Effect::Server(op, name));
}

fn selected_server(app: &App) -> Option<String> {
    app.visible_servers()
        .get(app.servers.selected)
        .map(|s| s.name.clone())
}

fn selected_route(app: &App) -> Option<String> {
    app.visible_routes()
        .get(app.routes.selected)
        .map(|r| r.route.clone())
}

fn run_cmd(app: &mut App, fx: &mut Vec<Effect>, cmd: Cmd) {
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
        Cmd::GoPane(i) => go(app, PANES[i.min(PANES.len() - 1)]),
        Cmd::Back => back(app, fx),
        Cmd::Up | Cmd::Down | Cmd::Top | Cmd::Bottom | Cmd::PageUp | Cmd::PageDown => mv(app, cmd),
        Cmd::Start | Cmd::Stop | Cmd::Restart => {
            let Some(name) = selected_server(app) else {
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
        Cmd::ShowLogs => {
            if let Some(name) = selected_server(app) {
                app.logs.server = Some(name);
                app.logs.follow = true;
                app.logs.back = 0;
                go(app, Pane::Logs);
            }
        }
        Cmd::Probe => {
            let r = selected_route(app);
            app.notify(
                format!("probing {}", r.as_deref().unwrap_or("every route")),
                false,
            );
            fx.push(Effect::Probe(r));
        }
        Cmd::ChatRoute => {
            if let Some(r) = selected_route(app) {
                if let Some(i) = app.chat.routes.iter().position(|x| *x == r) {
                    app.chat.route = i;
                }
                go(app, Pane::Chat);
            }
        }
        Cmd::BenchRoute => {
            if let Some(r) = selected_route(app) {
                if let Some(i) = app.chat.routes.iter().position(|x| *x == r) {
                    app.bench.form.route = i;
                    app.bench.form.route_chosen = true;
                }
                go(app, Pane::Bench);
            }
        }
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
        Cmd::NewChat => {
            if app.chat.streaming.is_some() {
                app.notify("an answer is still streaming (esc cancels it)", true);
            } else {
                app.chat.conv.turns.clear();
                app.chat.back = 0;
                app.notify("new conversation", false);
            }
        }
        Cmd::Run => run_bench(app, fx),
        Cmd::Edit => edit_bench_field(app),
        Cmd::More | Cmd::Less => more_less(app, fx, cmd == Cmd::More),
        Cmd::Left | Cmd::Right => cycle_bench_field(app, cmd == Cmd::Right),
        Cmd::Baseline => match app.bench.results.first().cloned() {
            Some(r) => {
                app.notify(format!("baseline: this run on {}", r.label), false);
                app.bench.baseline = Some(r);
            }
            None => app.notify("no result yet to keep as the baseline", true),
        },
        Cmd::Follow => {
            app.logs.follow = !app.logs.follow;
            if app.logs.follow {
                app.logs.back = 0;
            }
        }
        Cmd::Wrap => app.logs.wrap = !app.logs.wrap,
        Cmd::NextServer | Cmd::PrevServer => {
            let names: Vec<String> = app.servers.list.iter().map(|s| s.name.clone()).collect();
            if names.is_empty() {
                return;
            }
            let cur = app
                .log_server()
                .and_then(|c| names.iter().position(|n| *n == c))
                .unwrap_or(0);
            let n = names.len();
            let next = if cmd == Cmd::NextServer {
                (cur + 1) % n
            } else {
                (cur + n - 1) % n
            };
            app.logs.server = Some(names[next].clone());
            app.logs.back = 0;
            app.logs.follow = true;
        }
    }
}

fn back(app: &mut App, fx: &mut Vec<Effect>) {
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
        app.notify(
            "stopping the load test; requests in flight count as cancelled",
            false,
        );
        return;
    }
    if app.filters.remove(&app.pane).is_some() {
        return;
    }
    if let Some(p) = app.history.pop() {
        app.pane = p;
    }
}

fn mv(app: &mut App, cmd: Cmd) {
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
        Pane::Gpu => {}
    }
}

fn command(app: &mut App, fx: &mut Vec<Effect>, line: &str) {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else { return };
    let arg = words.collect::<Vec<_>>().join(" ");
    let arg = arg.trim();
    match verb {
        "q" | "quit" => request_quit(app, fx),
        "q!" | "quit!" => quit(app, fx, Vec::new()),
        "help" | "h" => app.overlay = Overlay::Help,
        "logs" | "log" => {
            if !arg.is_empty() {
                if app.servers.list.iter().any(|s| s.name == arg) {
                    app.logs.server = Some(arg.to_string());
                    app.logs.follow = true;
                    app.logs.back = 0;
                } else {
                    app.notify(format!("no server `{arg}`"), true);
                    return;
                }
            }
            go(app, Pane::Logs);
        }
        "start" | "stop" | "restart" => {
            if !app.servers.list.iter().any(|s| s.name == arg) {
                app.notify(format!("no server `{arg}` (:{verb} NAME)"), true);
                return;
            }
            let op = match verb {
                "start" => Op::Start,
                "stop" => Op::Stop,
                _ => Op::Restart,
            };
            server_op(app, fx, op, arg.to_string());
        }
        "route" => match app.chat.routes.iter().position(|r| r == arg) {
            Some(i) => {
                app.chat.route = i;
                app.bench.form.route = i;
                app.bench.form.route_chosen = true;
                app.notify(format!("route {arg}"), false);
            }
            None => app.notify(
                format!("no route `{arg}` (routes: {})", app.chat.routes.join(", ")),
                true,
            ),
        },
        "baseline" => {
            if arg.is_empty() {
                app.notify(
                    ":baseline FILE (a saved result, ours or vllm bench serve's)",
                    true,
                );
            } else {
                fx.push(Effect::LoadBaseline(arg.into()));
            }
        }
        "save" | "w" => save_to(app, fx, (!arg.is_empty()).then(|| arg.to_string())),
        "probe" => fx.push(Effect::Probe((!arg.is_empty()).then(|| arg.to_string()))),
        other => match Pane::from_name(other) {
            Some(p) => go(app, p),
            None => app.notify(format!("unknown command `:{other}` (try :help)"), true),
        },
    }
}

fn save(app: &mut App, fx: &mut Vec<Effect>) {
    save_to(app, fx, None)
}

fn save_to(app: &mut App, fx: &mut Vec<Effect>, path: Option<String>) {
    let stamp = crate::time::vllm_date(app.now);
    match app.pane {
        Pane::Bench => match app.bench.results.first() {
            Some(r) => {
                let doc = if app.bench.results.len() > 1 {
                    serde_json::json!({"a": app.bench.results[0].to_json(), "b": app.bench.results[1].to_json()})
                } else {
                    r.to_json()
                };
                fx.push(Effect::Save {
                    path: path
                        .unwrap_or_else(|| format!("anorag-bench-{}-{stamp}.json", r.label))
                        .into(),
                    contents: serde_json::to_string_pretty(&doc).unwrap_or_default(),
                });
            }
            None => app.notify("no result to save yet", true),
        },
        _ => {
            if app.chat.conv.turns.is_empty() {
                app.notify("nothing to save: the conversation is empty", true);
                return;
            }
            fx.push(Effect::Save {
                path: path
                    .unwrap_or_else(|| format!("anorag-chat-{stamp}.md"))
                    .into(),
                contents: app
                    .chat
                    .conv
                    .to_markdown(&format!("Chat with {}", app.chat_route().unwrap_or("?"))),
            });
        }
    }
}

fn sup_event(app: &mut App, ev: SupEvent, fx: &mut Vec<Effect>) {
    match ev {
        SupEvent::Status(st) => {
            let st = *st;
            // Autostart once per console, unless read-only or already running elsewhere.
            let autostart = st.autostart
                && !st.is_running()
                && !app.read_only
                && !app.servers.list.iter().any(|s| s.name == st.name);
            match app.servers.list.iter_mut().find(|s| s.name == st.name) {
                Some(s) => *s = st.clone(),
                None => app.servers.list.push(st.clone()),
            }
            if autostart && st.state == crate::supervisor::State::Stopped {
                server_op(app, fx, Op::Start, st.name.clone());
            }
        }
        SupEvent::Logs { name, lines, lost } => {
            let cap = app.logs.cap;
            let ring = app
                .logs
                .rings
                .entry(name)
                .or_insert_with(|| LogRing::new(cap));
            ring.extend(lines);
            ring.count_lost(lost);
        }
        SupEvent::Done { name, op, result } => {
            app.servers.busy.remove(&name);
            match result {
                Ok(msg) => app.notify(format!("{name}: {msg}"), false),
                Err(e) => {
                    if op == Op::Start {
                        app.servers.started_here.remove(&name);
                    }
                    app.notify(format!("{name}: {} failed: {e}", op.verb()), true);
                }
            }
        }
    }
}

fn chat_typing(app: &mut App, fx: &mut Vec<Effect>, k: KeyEvent) {
    let newline =
        k.modifiers.contains(KeyModifiers::ALT) || k.modifiers.contains(KeyModifiers::SHIFT);
    match k.code {
        // The footer says "esc cancels" while an answer streams: one key does it, and the
        // next one leaves the message box.
        KeyCode::Esc if app.chat.streaming.is_some() => back(app, fx),
        KeyCode::Esc => app.typing = Typing::None,
        KeyCode::Enter if newline => app.chat.input.insert_newline(),
        KeyCode::Enter => send_chat(app, fx),
        _ => {
            app.chat.input.input(k);
        }
    }
}

fn send_chat(app: &mut App, fx: &mut Vec<Effect>) {
    let text = app.chat.input.lines().join("\n");
    if text.trim().is_empty() {
        return;
    }
    if app.chat.streaming.is_some() {
        app.notify("an answer is still streaming (esc cancels it)", true);
        return;
    }
    let Some(route) = app.chat_route().map(String::from) else {
        app.notify("no route to chat with", true);
        return;
    };
    let id = app.chat.next_id;
    app.chat.next_id += 1;
    let req = app.chat.conv.request(&text, &app.chat.params);
    app.chat.streaming = Some(Streaming {
        id,
        user: text,
        text: String::new(),
        route: route.clone(),
        served_by: None,
        attempts: Vec::new(),
        ttft_ms: None,
    });
    app.chat.input = {
        let mut t = ratatui_textarea::TextArea::default();
        t.set_placeholder_text("Type a message · enter sends · alt-enter: new line · esc: leave");
        t
    };
    app.chat.back = 0;
    fx.push(Effect::ChatSend { id, route, req });
}

fn chat_event(app: &mut App, ev: ChatEvent) {
    let Some(s) = app.chat.streaming.as_mut().filter(|s| s.id == ev.id()) else {
        // A cancelled answer's late events.
        return;
    };
    match ev {
        ChatEvent::Started {
            served_by,
            attempts,
            ..
        } => {
            s.served_by = Some(served_by);
            s.attempts = attempts;
        }
        ChatEvent::FirstToken { ttft_ms, .. } => s.ttft_ms = Some(ttft_ms),
        ChatEvent::Delta { text, .. } => s.text.push_str(&text),
        ChatEvent::Finished { meta, .. } => {
            let s = app.chat.streaming.take().expect("checked above");
            if let Some(e) = &meta.error {
                app.notify(format!("chat: {}", e.lines().next().unwrap_or(e)), true);
            }
            app.chat.conv.turns.push(Turn {
                user: s.user,
                answer: s.text,
                meta: *meta,
            });
        }
    }
}

fn chat_setting_text(app: &App, field: usize) -> String {
    match field {
        0 => app.chat.conv.system.clone(),
        1 => app
            .chat
            .params
            .temperature
            .map(|t| t.to_string())
            .unwrap_or_default(),
        _ => app
            .chat
            .params
            .max_tokens
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

/// Applies a chat setting; false (with a notice) when the text is not a valid value.
fn apply_chat_setting(app: &mut App, field: usize, text: &str) -> bool {
    let t = text.trim();
    match field {
        0 => app.chat.conv.system = text.to_string(),
        1 => match t {
            "" => app.chat.params.temperature = None,
            v => match v.parse::<f32>() {
                Ok(x) if (0.0..=2.0).contains(&x) => app.chat.params.temperature = Some(x),
                _ => {
                    app.notify(
                        "temperature: a number from 0 to 2 (empty: the route's default)",
                        true,
                    );
                    return false;
                }
            },
        },
        _ => match t {
            "" => app.chat.params.max_tokens = None,
            v => match v.parse::<u32>() {
                Ok(x) if x > 0 => app.chat.params.max_tokens = Some(x),
                _ => {
                    app.notify(
                        "max tokens: a whole number above 0 (empty: the route's default)",
                        true,
                    );
                    return false;
                }
            },
        },
    }
    true
}

fn bench_field_text(app: &App, field: usize) -> Option<String> {
    let f = &app.bench.form;
    Some(match field {
        2 if f.open => f.rate.to_string(),
        2 => f.concurrency.to_string(),
        4 if f.by_duration => f.duration_s.to_string(),
        4 => f.requests.to_string(),
        5 => f.input_len.to_string(),
        6 => f.output_len.to_string(),
        _ => return None,
    })
}

fn edit_bench_field(app: &mut App) {
    if app.bench.running.is_some() {
        return;
    }
    match bench_field_text(app, app.bench.field) {
        Some(t) => app.typing = Typing::BenchField(app.bench.field, t),
        None => cycle_bench_field(app, true),
    }
}

fn apply_bench_field(app: &mut App, field: usize, text: &str) -> bool {
    let t = text.trim();
    let f = &mut app.bench.form;
    let ok = match field {
        2 if f.open => t
            .parse::<f64>()
            .ok()
            .filter(|x| *x > 0.0)
            .map(|x| f.rate = x)
            .is_some(),
        2 => t
            .parse::<usize>()
            .ok()
            .filter(|x| *x > 0)
            .map(|x| f.concurrency = x)
            .is_some(),
        4 if f.by_duration => t
            .parse::<f64>()
            .ok()
            .filter(|x| *x > 0.0)
            .map(|x| f.duration_s = x)
            .is_some(),
        4 => t
            .parse::<u64>()
            .ok()
            .filter(|x| *x > 0)
            .map(|x| f.requests = x)
            .is_some(),
        5 => t
            .parse::<u32>()
            .ok()
            .filter(|x| *x > 0)
            .map(|x| f.input_len = x)
            .is_some(),
        6 => t
            .parse::<u32>()
            .ok()
            .filter(|x| *x > 0)
            .map(|x| f.output_len = x)
            .is_some(),
        _ => true,
    };
    if !ok {
        app.notify(
            format!("{}: `{t}` is not a positive number", BENCH_FIELDS[field]),
            true,
        );
    }
    ok
}

/// Until the operator picks a bench route, keep the form on one that answers: the default
/// route when it is up, else the first other route that is up (the built-in simulator last).
/// A load test measures one route without fallback, so a down default would only fail.
fn follow_up_route(app: &mut App) {
    use crate::telemetry::routes::Health;
    if app.bench.form.route_chosen || app.bench.running.is_some() {
        return;
    }
    let routes = &app.routes.table.routes;
    let up = |name: &str| {
        routes
            .iter()
            .any(|r| r.route == name && r.state() == Health::Up)
    };
    let builtin = |name: &str| {
        routes
            .iter()
            .any(|r| r.route == name && r.kind == crate::provider::ProviderKind::Builtin)
    };
    let names = &app.chat.routes;
    let pick = names
        .iter()
        .position(|n| routes.iter().any(|r| r.default && r.route == *n) && up(n))
        .or_else(|| names.iter().position(|n| up(n) && !builtin(n)))
        .or_else(|| names.iter().position(|n| up(n)));
    if let Some(i) = pick {
        app.bench.form.route = i;
        if app.bench.form.compare == Some(i) {
            app.bench.form.compare = None;
        }
    }
}

fn cycle_bench_field(app: &mut App, forward: bool) {
    if app.bench.running.is_some() {
        return;
    }
    let n = app.chat.routes.len().max(1);
    let f = &mut app.bench.form;
    match app.bench.field {
        0 => {
            f.route = if forward {
                (f.route + 1) % n
            } else {
                (f.route + n - 1) % n
            };
            f.route_chosen = true;
        }
        1 => f.open = !f.open,
        3 => f.by_duration = !f.by_duration,
        7 => {
            // none -> each other route -> none
            let mut options: Vec<Option<usize>> = vec![None];
            options.extend((0..n).filter(|i| *i != f.route).map(Some));
            let cur = options.iter().position(|o| *o == f.compare).unwrap_or(0);
            let k = options.len();
            f.compare = options[if forward {
                (cur + 1) % k
            } else {
                (cur + k - 1) % k
            }];
        }
        _ => more_less_field(app, forward),
    }
}

fn more_less_field(app: &mut App, more: bool) {
    let f = &mut app.bench.form;
    let grow = |v: u64| {
        if more {
            v.saturating_mul(2).max(1)
        } else {
            (v / 2).max(1)
        }
    };
    match app.bench.field {
        2 if f.open => {
            f.rate = if more {
                f.rate * 2.0
            } else {
                (f.rate / 2.0).max(0.1)
            }
        }
        2 => f.concurrency = grow(f.concurrency as u64) as usize,
        4 if f.by_duration => {
            f.duration_s = if more {
                f.duration_s * 2.0
            } else {
                (f.duration_s / 2.0).max(1.0)
            }
        }
        4 => f.requests = grow(f.requests),
        5 => f.input_len = grow(u64::from(f.input_len)) as u32,
        6 => f.output_len = grow(u64::from(f.output_len)) as u32,
        _ => {}
    }
}

fn more_less(app: &mut App, fx: &mut Vec<Effect>, more: bool) {
    let Some(r) = &app.bench.running else {
        more_less_field(app, more);
        return;
    };
    let p: &Progress = &r.progress;
    let ctl = match (p.rate, p.concurrency) {
        (Some(rate), _) => Control::SetRate(if more { rate * 1.25 } else { rate / 1.25 }),
        (None, Some(c)) => Control::SetConcurrency(if more {
            c + 1
        } else {
            c.saturating_sub(1).max(1)
        }),
        _ => return,
    };
    match ctl {
        Control::SetRate(x) => app.notify(format!("rate → {x:.2} req/s"), false),
        Control::SetConcurrency(c) => app.notify(format!("concurrency → {c}"), false),
        Control::Cancel => {}
    }
    fx.push(Effect::BenchControl(ctl));
}

/// The plan the form describes.
pub fn bench_plan(f: &BenchForm) -> Plan {
    let load = if f.open {
        Load::Open {
            rate: f.rate,
            burstiness: 1.0,
            max_concurrency: None,
        }
    } else {
        Load::Closed {
            concurrency: f.concurrency,
        }
    };
    let stop = if f.by_duration {
        Stop::DurationS(f.duration_s)
    } else {
        Stop::Requests(f.requests)
    };
    Plan::new(
        load,
        stop,
        Workload::Random {
            input_len: f.input_len,
            output_len: f.output_len,
            range_ratio: 0.0,
        },
    )
}

fn run_bench(app: &mut App, fx: &mut Vec<Effect>) {
    if read_only(app, "run load tests") {
        return;
    }
    if app.bench.running.is_some() {
        app.notify("a load test is running (esc stops it)", true);
        return;
    }
    let f = app.bench.form.clone();
    let Some(route) = app.chat.routes.get(f.route).cloned() else {
        return;
    };
    let then = f.compare.and_then(|i| app.chat.routes.get(i).cloned());
    let id = app.bench.next_id;
    app.bench.next_id += 1;
    app.bench.results.clear();
    app.bench.running = Some(RunningBench {
        id,
        route: route.clone(),
        progress: Progress::default(),
        then,
    });
    fx.push(Effect::BenchStart {
        id,
        route,
        plan: Box::new(bench_plan(&f)),
    });
}

fn bench_done(
    app: &mut App,
    id: u64,
    result: Result<Vec<crate::bench::BenchResult>, String>,
    fx: &mut Vec<Effect>,
) {
    let Some(run) = app.bench.running.clone().filter(|r| r.id == id) else {
        return;
    };
    match result {
        Ok(rs) => {
            app.bench.results.extend(rs);
            match run.then {
                Some(next) => {
                    let nid = app.bench.next_id;
                    app.bench.next_id += 1;
                    app.bench.running = Some(RunningBench {
                        id: nid,
                        route: next.clone(),
                        progress: Progress::default(),
                        then: None,
                    });
                    fx.push(Effect::BenchStart {
                        id: nid,
                        route: next,
                        plan: Box::new(bench_plan(&app.bench.form)),
                    });
                }
                None => {
                    app.bench.running = None;
                    if let Some(r) = app.bench.results.first() {
                        let bound = if r.client.bound {
                            " (client-bound: see the warnings)"
                        } else {
                            ""
                        };
                        let first = match r.error_samples.first() {
                            Some(e) if r.completed == 0 => format!(": {e}"),
                            _ => String::new(),
                        };
                        app.notify(
                            format!(
                                "load test done: {} ok, {} failed{bound}{first}",
                                r.completed, r.failed
                            ),
                            r.client.bound || r.failed > 0,
                        );
                    }
                }
            }
        }
        Err(e) => {
            app.bench.running = None;
            app.notify(format!("load test: {e}"), true);
        }
    }
}
