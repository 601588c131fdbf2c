//! The `:` command line (`:logs NAME`, `:start NAME`, `:route R`, `:save FILE`, `:report FILE`,
//! ...) and saving.
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
        "report" => report_to(app, fx, (!arg.is_empty()).then(|| arg.to_string())),
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

/// The Bench pane's result as a saved document, with the name it is saved under by default.
fn bench_document(app: &App) -> Option<(String, serde_json::Value)> {
    let stamp = crate::time::vllm_date(app.now);
    if let Some(s) = app
        .bench
        .find_max
        .as_ref()
        .filter(|s| !s.results.is_empty())
    {
        let name = format!("anorag-find-max-{}-{stamp}", s.route);
        return Some((name, s.search.document(&s.results)));
    }
    let r = app.bench.results.first()?;
    let doc = if app.bench.results.len() > 1 {
        serde_json::json!({"a": app.bench.results[0].to_json(), "b": app.bench.results[1].to_json()})
    } else {
        r.to_json()
    };
    Some((format!("anorag-bench-{}-{stamp}", r.label), doc))
}

pub(super) fn save_to(app: &mut App, fx: &mut Vec<Effect>, path: Option<String>) {
    if app.pane == Pane::Bench {
        let Some((name, doc)) = bench_document(app) else {
            app.notify("no result to save yet", true);
            return;
        };
        let path: std::path::PathBuf = path.unwrap_or_else(|| format!("{name}.json")).into();
        fx.push(Effect::Save {
            path: path.clone(),
            contents: serde_json::to_string_pretty(&doc).unwrap_or_default(),
        });
        // The report goes beside the JSON: a result that leaves the terminal is read there.
        fx.push(Effect::Report {
            path: crate::report::beside(&path),
            name,
            doc: Box::new(doc),
        });
        return;
    }
    if app.chat.conv.turns.is_empty() {
        app.notify("nothing to save: the conversation is empty", true);
        return;
    }
    let stamp = crate::time::vllm_date(app.now);
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

/// `:report [FILE]`: the HTML report of the result on the Bench pane.
pub(super) fn report_to(app: &mut App, fx: &mut Vec<Effect>, path: Option<String>) {
    let Some((name, doc)) = bench_document(app) else {
        app.notify(
            "no load-test result to report yet (run one on the Bench pane)",
            true,
        );
        return;
    };
    fx.push(Effect::Report {
        path: path.unwrap_or_else(|| format!("{name}.html")).into(),
        name,
        doc: Box::new(doc),
    });
}
