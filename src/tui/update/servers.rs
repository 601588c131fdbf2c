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
            let old = app.servers.list.iter().position(|s| s.name == st.name);
            let new_failure = st.failure.is_some()
                && old.is_some_and(|i| app.servers.list[i].failure != st.failure);
            match old {
                Some(i) => app.servers.list[i] = st.clone(),
                None => app.servers.list.push(st.clone()),
            }
            if let (true, Some(why)) = (new_failure, &st.failure) {
                app.notify(format!("{} failed to start: {why}", st.name), true);
            }
            warn_if_moved(app, &st);
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

/// A cluster server running on another address than its route's (this console resolved the
/// route's node when it started, and Ray has since placed the job elsewhere): said once, since
/// the route's requests still go to the old address.
fn warn_if_moved(app: &mut App, st: &crate::supervisor::ServerStatus) {
    if st.cluster.is_none() || !st.is_running() || st.host.is_empty() {
        return;
    }
    let Some(route) = &st.route else { return };
    let Some(r) = app.routes.table.routes.iter().find(|r| &r.route == route) else {
        return;
    };
    let hosts: Vec<String> = r
        .targets
        .iter()
        .filter_map(|t| Some(url::Url::parse(&t.url).ok()?.host_str()?.to_string()))
        .collect();
    if hosts.is_empty() || hosts.iter().any(|h| same_host(h, &st.host)) {
        return;
    }
    if !app
        .servers
        .moved_warned
        .insert((st.name.clone(), st.host.clone()))
    {
        return;
    }
    app.notify(
        format!(
            "{} now runs at {}{}, but route {route} still points at {}: restart the console to follow it",
            st.name,
            st.host,
            st.node.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(),
            hosts.join(", ")
        ),
        true,
    );
}

fn same_host(a: &str, b: &str) -> bool {
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1" | "[::1]");
    a.eq_ignore_ascii_case(b) || (loopback(a) && loopback(b))
}
