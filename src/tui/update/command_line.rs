//! The `:` command line (`:logs NAME`, `:start NAME`, `:route R`, `:save FILE`, ...) and saving.
use super::super::action::Effect;
use super::super::app::*;
use super::*;

pub(super) fn command(app: &mut App, fx: &mut Vec<Effect>, line: &str) {
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

pub(super) fn save(app: &mut App, fx: &mut Vec<Effect>) {
    save_to(app, fx, None)
}

pub(super) fn save_to(app: &mut App, fx: &mut Vec<Effect>, path: Option<String>) {
    let stamp = crate::time::vllm_date(app.now);
    match app.pane {
        Pane::Bench
            if app
                .bench
                .find_max
                .as_ref()
                .is_some_and(|s| !s.results.is_empty()) =>
        {
            let Some(s) = app.bench.find_max.as_ref() else {
                return;
            };
            fx.push(Effect::Save {
                path: path
                    .unwrap_or_else(|| format!("anorag-find-max-{}-{stamp}.json", s.route))
                    .into(),
                contents: serde_json::to_string_pretty(&s.search.document(&s.results))
                    .unwrap_or_default(),
            });
        }
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
