//! Server operations and the supervisor engine's events.
use super::super::action::Effect;
use super::super::app::*;
use super::*;

pub(super) fn server_op(app: &mut App, fx: &mut Vec<Effect>, op: Op, name: String) {
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

pub(super) fn sup_event(app: &mut App, ev: SupEvent, fx: &mut Vec<Effect>) {
    match ev {
        SupEvent::Status(st) => {
            let st = *st;
            // Autostart once per console, unless read-only, turned off, or already running
            // elsewhere.
            let autostart = st.autostart
                && !st.is_running()
                && !app.read_only
                && !app.no_autostart
                && !app.servers.list.iter().any(|s| s.name == st.name);
            match app.servers.list.iter_mut().find(|s| s.name == st.name) {
                Some(s) => *s = st.clone(),
                None => app.servers.list.push(st.clone()),
            }
            if autostart && st.state == crate::supervisor::State::Stopped {
                server_op(app, fx, Op::Start, st.name.clone());
                // A config is code: say what it started on its own.
                app.autostarted.push(st.name.clone());
                app.notify(
                    format!(
                        "autostarted {} (autostart: true in the config; --no-autostart skips it)",
                        app.autostarted.join(", ")
                    ),
                    false,
                );
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
        SupEvent::Cluster(v) => {
            match app
                .cluster
                .views
                .iter_mut()
                .find(|x| x.cluster == v.cluster)
            {
                Some(x) => *x = *v,
                None => app.cluster.views.push(*v),
            }
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
