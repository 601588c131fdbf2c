//! The UI task: it alone owns the state and the terminal. Keys and engine events become
//! actions, `update` turns them into state and effects, effects go to the engines. A frame
//! is drawn only when something visible changed, at most once per frame deadline; no timer
//! runs while nothing changes.
use super::action::{Action, Effect};
use super::app::{App, Pane};
use super::update::update;
use super::view;
use crate::bench::{self, BenchHandle, BenchResult, BenchTarget};
use crate::provider::Router;
use crate::session::{self, ChatEvent};
use crate::supervisor::engine::{SupCommand, SupEvent, SupervisorHandle};
use crate::telemetry::routes::{Health, ProbeCmd, RouteTable};
use crate::telemetry::sampler::{GpuView, HostView};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The longest a telemetry change waits to be drawn.
const TELEMETRY_FRAME: Duration = Duration::from_secs(1);

enum BenchEv {
    Progress(bool),
    Done(Result<Vec<BenchResult>, String>),
}

/// Everything the console talks to.
pub struct Engines {
    pub router: Arc<Router>,
    pub sup: SupervisorHandle,
    pub sup_rx: mpsc::Receiver<SupEvent>,
    pub gpu_rx: watch::Receiver<GpuView>,
    pub host_rx: watch::Receiver<HostView>,
    pub routes_rx: watch::Receiver<RouteTable>,
    pub probe_tx: mpsc::Sender<ProbeCmd>,
    /// The gateways' traffic, published a few times a second while it changes.
    pub traffic: crate::traffic::Watcher,
    /// Panics of background tasks (the hook in `panics` sends them).
    pub panic_tx: mpsc::UnboundedSender<String>,
    pub panic_rx: mpsc::UnboundedReceiver<String>,
    /// The config, for the Models pane's scan and saved profiles.
    pub config: Arc<crate::config::Config>,
    /// The servers running now, by name (a model's users).
    pub running: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
}

/// A source of terminal events: the real terminal, or a script in tests.
pub type Events = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Event>> + Send>>;

pub fn terminal_events() -> Events {
    Box::pin(EventStream::new())
}

/// What the header and the current pane would show from a sample: a new sample that does not
/// change it needs no frame.
fn host_sig(app: &App) -> (i64, u64, Vec<(String, i64, u64)>) {
    let h = &app.host.sample;
    let servers = if app.pane == Pane::Servers {
        h.servers
            .iter()
            .map(|s| (s.name.clone(), s.cpu_pct.round() as i64, s.rss_bytes >> 20))
            .collect()
    } else {
        Vec::new()
    };
    (h.cpu_pct.round() as i64, h.memory_used_bytes >> 24, servers)
}

/// A route's health and each target's last error.
type RouteSig = (Health, Vec<Option<String>>);

/// What the Bench pane shows of the route table: the route it will load, and whether that
/// route is down and why.
fn bench_route_sig(app: &App) -> (usize, Option<RouteSig>) {
    let name = app.chat.routes.get(app.bench.form.route);
    let route = app
        .routes
        .table
        .routes
        .iter()
        .find(|r| Some(&r.route) == name);
    (
        app.bench.form.route,
        route.map(|r| {
            (
                r.state(),
                r.targets.iter().map(|t| t.last_error.clone()).collect(),
            )
        }),
    )
}

/// What panes other than GPU show of a GPU sample.
fn gpu_sig(app: &App) -> (String, Vec<Option<u64>>) {
    let servers = if app.pane == Pane::Servers {
        app.servers
            .list
            .iter()
            .map(|s| app.server_gpu_bytes(&s.name))
            .collect()
    } else {
        Vec::new()
    };
    (view::gpu_summary(app), servers)
}

/// How long until the clock next matters: the minute on the header, a notice's end, the
/// uptime text when the Servers pane shows a running server, and every second of a run.
/// `now` is the real clock: deadlines are absolute, so a stream of other events cannot keep
/// postponing them.
fn next_tick(app: &App, now: f64) -> Duration {
    let mut at = (now / 60.0).floor() * 60.0 + 60.0;
    if let Some(n) = &app.notice {
        at = at.min(n.until);
    }
    if app.pane == Pane::Servers {
        for s in app.servers.list.iter().filter(|s| s.is_running()) {
            if let Some(t) = s.started_unix {
                at = at.min(next_uptime_change(now - t) + t);
            }
        }
    }
    if app.bench.running.is_some() || app.chat.streaming.is_some() {
        at = at.min(app.now + 1.0);
    }
    crate::input::duration((at - now).clamp(0.0, 60.0))
}

/// When an uptime shown as `format::duration_s` next changes: every second for the first
/// hour, then every minute, then every hour.
fn next_uptime_change(up: f64) -> f64 {
    let step = match up {
        u if u < 3600.0 => 1.0,
        u if u < 86_400.0 => 60.0,
        _ => 3600.0,
    };
    ((up / step).floor() + 1.0) * step
}

/// Runs until the user quits; returns the servers to stop on the way out.
pub async fn run<B: ratatui::backend::Backend>(
    term: &mut ratatui::Terminal<B>,
    app: &mut App,
    mut eng: Engines,
    mut events: Events,
    frame: Duration,
) -> std::io::Result<Vec<String>>
where
    B::Error: Into<std::io::Error>,
{
    let (act_tx, mut act_rx) = mpsc::unbounded_channel::<Action>();
    let (chat_tx, mut chat_rx) = mpsc::channel::<ChatEvent>(256);
    let mut chats: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
    let mut bench: Option<(u64, BenchHandle)> = None;
    let mut dirty = true;
    // Telemetry (host, GPU, routes, the clock) changes the screen every second from several
    // engines at different moments: those changes share one frame a second, while keys,
    // server states, chat and load tests draw at the next frame.
    let mut lazy_at: Option<Instant> = None;
    let mut last_draw = Instant::now() - frame;
    let mut stop_on_quit = Vec::new();
    let mut term_signal =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        let lazy_due = lazy_at.is_some_and(|t| Instant::now() >= t);
        if (dirty || lazy_due) && last_draw.elapsed() >= frame {
            term.draw(|f| view::render(f, app)).map_err(Into::into)?;
            last_draw = Instant::now();
            dirty = false;
            lazy_at = None;
        }
        if app.quit {
            break;
        }
        let draw_at = last_draw + frame;
        let tick_at = Instant::now() + next_tick(app, crate::time::unix_now());
        let action: Option<Action> = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => Some(Action::Key(k)),
                Some(Ok(Event::Paste(s))) => Some(Action::Paste(s)),
                Some(Ok(Event::Resize(w, h))) => Some(Action::Resize(w, h)),
                Some(Ok(_)) => None,
                // The terminal is gone: leave, keeping the servers.
                Some(Err(_)) | None => break,
            },
            Some(ev) = eng.sup_rx.recv() => {
                eng.sup.taken(&ev);
                Some(Action::Sup(ev))
            }
            Ok(()) = eng.gpu_rx.changed() => Some(Action::Gpu(Box::new(eng.gpu_rx.borrow_and_update().clone()))),
            Ok(()) = eng.host_rx.changed() => Some(Action::Host(Box::new(eng.host_rx.borrow_and_update().clone()))),
            Ok(()) = eng.routes_rx.changed() => Some(Action::Routes(Box::new(eng.routes_rx.borrow_and_update().clone()))),
            Ok(()) = eng.traffic.rx.changed() => Some(Action::Traffic(eng.traffic.rx.borrow_and_update().clone())),
            Some(ev) = chat_rx.recv() => {
                if let ChatEvent::Finished { id, .. } = &ev {
                    chats.remove(id);
                }
                Some(Action::Chat(ev))
            }
            Some(a) = act_rx.recv() => Some(a),
            Some(p) = eng.panic_rx.recv() => Some(Action::EnginePanic(p)),
            a = bench_event(&mut bench) => a,
            _ = tokio::time::sleep_until(tick_at) => Some(Action::Tick(crate::time::unix_now())),
            _ = tokio::time::sleep_until(draw_at), if dirty => None,
            _ = tokio::time::sleep_until(lazy_at.unwrap_or(draw_at).max(draw_at)), if lazy_at.is_some() => None,
            _ = term_signal.recv() => break,
            _ = hup_signal.recv() => break,
        };
        let Some(action) = action else { continue };
        // Every action sees the time it happened (a notice set now lasts its full time).
        app.now = crate::time::unix_now();
        let lazy = is_telemetry(&action, app.pane);
        let visible = take(app, action, &mut |e| {
            if let Effect::Quit { stop } = &e {
                stop_on_quit = stop.clone();
            }
            apply(e, &mut eng, &act_tx, &chat_tx, &mut chats, &mut bench);
        });
        if visible && lazy {
            lazy_at.get_or_insert(Instant::now() + TELEMETRY_FRAME);
        } else {
            dirty |= visible;
        }
    }
    for (_, h) in chats {
        h.abort();
    }
    Ok(stop_on_quit)
}

/// The running load test's next news: its progress, or its end (never, when none runs).
async fn bench_event(bench: &mut Option<(u64, BenchHandle)>) -> Option<Action> {
    let ev = match bench.as_mut() {
        Some((_, h)) => tokio::select! {
            c = h.progress.changed() => BenchEv::Progress(c.is_ok()),
            d = &mut h.done => BenchEv::Done(d.map_err(|e| e.to_string()).and_then(|r| r)),
        },
        None => std::future::pending().await,
    };
    match ev {
        BenchEv::Progress(true) => bench.as_mut().map(|(id, h)| {
            Action::BenchProgress(*id, Box::new(h.progress.borrow_and_update().clone()))
        }),
        BenchEv::Progress(false) => None,
        BenchEv::Done(r) => bench.take().map(|(id, _)| Action::BenchDone(id, r)),
    }
}

/// Telemetry (host, GPU, routes, the clock) shares one frame a second. Traffic moves the
/// Traffic pane at once; elsewhere it is telemetry (the Routes and Servers panes show some
/// of it).
fn is_telemetry(action: &Action, pane: Pane) -> bool {
    matches!(
        action,
        Action::Host(_) | Action::Gpu(_) | Action::Routes(_) | Action::Tick(_)
    ) || (matches!(action, Action::Traffic(_)) && pane != Pane::Traffic)
}

/// Applies `action` to the state, hands its effects to `effect`, and says whether the screen
/// changed where the operator can see it.
fn take(app: &mut App, action: Action, effect: &mut dyn FnMut(Effect)) -> bool {
    let traffic_seen = matches!(app.pane, Pane::Traffic | Pane::Routes | Pane::Servers);
    match &action {
        Action::Host(_) => {
            let before = host_sig(app);
            let fx = update(app, action);
            debug_assert!(fx.is_empty());
            before != host_sig(app)
        }
        Action::Gpu(_) => {
            let before = gpu_sig(app);
            let fx = update(app, action);
            debug_assert!(fx.is_empty());
            // The GPU pane's sparklines move with every sample; elsewhere only the header
            // (and the servers' GPU memory) show GPUs.
            app.pane == Pane::Gpu || before != gpu_sig(app)
        }
        Action::Routes(_) => {
            let before = bench_route_sig(app);
            update(app, action);
            matches!(app.pane, Pane::Routes | Pane::Servers)
                || (app.pane == Pane::Bench && before != bench_route_sig(app))
        }
        Action::Tick(_) => {
            update(app, action);
            true
        }
        Action::Traffic(_) => {
            update(app, action).into_iter().for_each(&mut *effect);
            traffic_seen
        }
        _ => {
            update(app, action).into_iter().for_each(effect);
            true
        }
    }
}

/// Carries out one effect. Nothing here waits: slow work goes to a task that reports back.
fn apply(
    e: Effect,
    eng: &mut Engines,
    act_tx: &mpsc::UnboundedSender<Action>,
    chat_tx: &mpsc::Sender<ChatEvent>,
    chats: &mut HashMap<u64, tokio::task::AbortHandle>,
    bench: &mut Option<(u64, BenchHandle)>,
) {
    match e {
        Effect::Server(op, name) => {
            tracing::info!(server = %name, op = op.verb(), "server operation");
            if !eng.sup.send(SupCommand::Run(op, name.clone())) {
                let _ = act_tx.send(Action::Sup(SupEvent::Done {
                    name,
                    op,
                    result: Err("the supervisor engine is busy; try again".into()),
                }));
            }
        }
        Effect::Probe(route) => {
            let _ = eng.probe_tx.try_send(ProbeCmd::Now(route));
        }
        Effect::ChatSend { id, route, req } => {
            tracing::info!(route = %route, id, "chat");
            let h = session::spawn_answer(eng.router.clone(), route, req, id, chat_tx.clone());
            chats.insert(id, h);
        }
        Effect::ChatCancel(id) => {
            if let Some(h) = chats.remove(&id) {
                h.abort();
            }
        }
        Effect::BenchStart { id, route, plan } => {
            tracing::info!(route = %route, id, "load test");
            match BenchTarget::from_router(eng.router.clone(), Some(&route)) {
                Ok(mut t) => {
                    if plan.soak.is_some() {
                        t.memory = crate::supervisor::soak_probe::probe_for(&eng.config, &t).0;
                    }
                    *bench = Some((id, bench::spawn(t, vec![*plan])))
                }
                Err(e) => {
                    let _ = act_tx.send(Action::BenchDone(id, Err(e)));
                }
            }
        }
        Effect::BenchControl(c) => {
            if let Some((_, h)) = bench.as_ref() {
                let _ = h.control.try_send(c);
            }
        }
        Effect::Save { path, contents } => {
            let tx = act_tx.clone();
            tokio::task::spawn_blocking(move || {
                let r = std::fs::write(&path, contents)
                    .map(|_| path.display().to_string())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()));
                let _ = tx.send(Action::Saved(r));
            });
        }
        Effect::Report { path, name, doc } => {
            let tx = act_tx.clone();
            tokio::task::spawn_blocking(move || {
                let r = crate::report::load::parse(&name, *doc)
                    .and_then(|d| crate::report::write_docs(&[d], &[], &path, false, None))
                    .map(|_| format!("report {}", path.display()))
                    .map_err(|e| format!("report {}: {e}", path.display()));
                let _ = tx.send(Action::Saved(r));
            });
        }
        Effect::LoadBaseline(path) => {
            let tx = act_tx.clone();
            tokio::task::spawn_blocking(move || {
                let r = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|t| {
                        serde_json::from_str::<serde_json::Value>(&t)
                            .map_err(|e| format!("{}: {e}", path.display()))
                    })
                    .and_then(|v| {
                        // A compare file holds {"a": ..., "b": ...}: take the first run.
                        let one = v.get("a").cloned().unwrap_or(v);
                        BenchResult::from_json(&one).map_err(|e| format!("{}: {e}", path.display()))
                    })
                    .map(Box::new);
                let _ = tx.send(Action::BaselineLoaded(r));
            });
        }
        Effect::Log(lines) => {
            for l in lines {
                tracing::info!(target: "traffic", "{l}");
            }
        }
        Effect::ScanModels | Effect::Launch(_) | Effect::SaveProfile(_) => {
            models_effect(e, eng, act_tx)
        }
        Effect::Quit { .. } => {}
    }
}

/// The Models pane's effects: a scan on a blocking thread, a launch through the supervisor
/// engine, a profile saved beside the config (and made known to the engine).
fn models_effect(e: Effect, eng: &mut Engines, act_tx: &mpsc::UnboundedSender<Action>) {
    match e {
        Effect::ScanModels => {
            let tx = act_tx.clone();
            let cfg = eng.config.clone();
            let running = eng.running.clone();
            tokio::task::spawn_blocking(move || {
                let places = crate::models::Places::current(
                    cfg.models
                        .paths
                        .iter()
                        .map(|p| cfg.base_dir.join(p))
                        .collect(),
                );
                let mut list = crate::models::discover(&places);
                crate::models::mark_users(&mut list, &cfg, &running());
                let _ = tx.send(Action::Models(Box::new(list), crate::time::unix_now()));
            });
        }
        Effect::Launch(np) => {
            tracing::info!(server = %np.name, model = %np.model, "launch from the Models pane");
            let name = np.name.clone();
            let sent = crate::config::save::to_profile(&np).map(|p| {
                eng.sup
                    .send(SupCommand::Add(name.clone(), Box::new(p), true))
            });
            if !matches!(sent, Ok(true)) {
                let _ = act_tx.send(Action::Sup(SupEvent::Done {
                    name,
                    op: crate::supervisor::engine::Op::Start,
                    result: Err(sent
                        .err()
                        .unwrap_or_else(|| "the supervisor engine is busy; try again".into())),
                }));
            }
        }
        Effect::SaveProfile(np) => {
            let tx = act_tx.clone();
            let file = eng.config.file.clone();
            let sup = eng.sup.clone();
            tokio::task::spawn_blocking(move || {
                let r =
                    crate::config::save::save_profile(std::path::Path::new(&file), &np).map(|s| {
                        if let Ok(p) = crate::config::save::to_profile(&np) {
                            sup.send(SupCommand::Add(np.name.clone(), Box::new(p), false));
                        }
                        let inc = if s.included {
                            format!(
                                " ({file} gained `include: [{}]`)",
                                crate::config::save::SAVED_DIR
                            )
                        } else {
                            String::new()
                        };
                        format!("profile {} in {}{inc}", np.name, s.file.display())
                    });
                let _ = tx.send(Action::Saved(r));
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{next_tick, next_uptime_change};
    use crate::tui::app::{App, Pane};
    use crate::tui::keymap::KeyMap;
    use std::time::Duration;

    #[test]
    fn tick_deadlines_follow_the_real_clock() {
        let mut a = App::new(KeyMap::defaults(), vec!["r".into()], "r", false, 100);
        a.pane = Pane::Chat;
        // The last tick was long ago: the header's minute is still at most a minute away.
        a.now = 1_000.0;
        assert_eq!(next_tick(&a, 6_030.0), Duration::from_secs(30));
        // A notice ends on time, and one already due ticks at once.
        a.now = 6_030.0;
        a.notify("hello", false);
        assert_eq!(next_tick(&a, 6_030.0), Duration::from_secs(4));
        assert_eq!(next_tick(&a, 6_040.0), Duration::ZERO);
    }

    #[test]
    fn uptime_changes_when_its_text_does() {
        assert_eq!(next_uptime_change(0.2), 1.0);
        assert_eq!(next_uptime_change(59.5), 60.0);
        assert_eq!(next_uptime_change(3599.9), 3600.0);
        assert_eq!(next_uptime_change(3600.0), 3660.0, "1h01m is the next text");
        assert_eq!(next_uptime_change(86_400.5), 90_000.0);
        for up in [0.0, 12.7, 61.0, 3700.0, 90_000.0] {
            let next = next_uptime_change(up);
            assert_ne!(
                crate::format::duration_s(up),
                crate::format::duration_s(next),
                "{up}"
            );
            assert_eq!(
                crate::format::duration_s(up),
                crate::format::duration_s(next - 1e-6),
                "{up}"
            );
        }
    }
}
