//! `update(&mut App, Action) -> Vec<Effect>`: every change of the console's state, with no
//! I/O and no waiting, so it is tested without a terminal.
mod bench;
mod chat;
mod command_line;
mod commands;
mod models;
mod servers;
mod traffic;

use super::action::{Action, Effect};
use super::app::*;
use super::keymap::{Cmd, Lookup};
use crate::bench::{Control, Load, Plan, Progress, Stop, Workload};
use crate::session::{ChatEvent, Turn};
use crate::supervisor::engine::{Op, SupEvent};
use crate::supervisor::logs::LogRing;
use bench::*;
use chat::*;
use command_line::*;
use commands::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use models::*;
use servers::*;
use traffic::*;
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
        Action::Traffic(v) => traffic_views(app, v, &mut fx),
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
        Action::EnginePanic(msg) => {
            app.notify(
                format!("internal error in a background task: {msg}; the console goes on (details in the log)"),
                true,
            );
            app.engine_errors.push(msg);
        }
        Action::Models(list, at) => models_found(app, *list, at),
        Action::BaselineLoaded(r) => match r {
            Ok(b) => {
                app.notify(format!("baseline: {} ({})", b.label, b.date), false);
                app.bench.baseline = Some(*b);
            }
            Err(e) => app.notify(format!("baseline: {e}"), true),
        },
    }
    ensure_scanned(app, &mut fx);
    fx
}

pub(super) fn is_ctrl_c(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('C'))
}

pub(super) fn key(app: &mut App, k: KeyEvent, fx: &mut Vec<Effect>) {
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
                    app.traffic.selected = 0;
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
        Typing::LaunchField(field, buf) => {
            launch_typing(app, field, buf, k);
            return;
        }
        Typing::BenchField(field, buf) => {
            bench_typing(app, field, buf, k);
            return;
        }
    }
    let Some(cmd) = app.keys.lookup(app.pane.ctx(), &k) else {
        return;
    };
    run_cmd(app, fx, cmd);
}

pub(super) enum LineKey {
    Enter,
    Esc,
    Changed,
    Other,
}

/// One-line editing: characters, backspace, ctrl-u to clear.
pub(super) fn line_edit(buf: &mut String, k: &KeyEvent) -> LineKey {
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

pub(super) fn paste(app: &mut App, s: &str) {
    match &mut app.typing {
        Typing::ChatMessage => {
            app.chat.input.insert_str(s);
        }
        Typing::Command(b)
        | Typing::Filter(b)
        | Typing::ChatSetting(_, b)
        | Typing::BenchField(_, b)
        | Typing::LaunchField(_, b) => {
            b.push_str(&s.replace(['\n', '\r'], " "));
        }
        Typing::None => {}
    }
}
