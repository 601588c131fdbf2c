//! The supervisor as an engine for the console: commands in (start, stop, restart), events
//! out (status changes, log lines, results), never blocking the caller. Servers started from
//! another shell are seen because the state directory is the source of truth.
use super::control::Supervisor;
pub use super::events::{differs, Op, SupEvent, QUEUED_LOG_BYTES};
use super::logs::LogFollower;
use super::outcome::ControlError;
use super::status::ServerStatus;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
pub enum SupCommand {
    Run(Op, String),
    /// A profile made in the console (the Models pane's launch form): known from now on,
    /// and started at once when the flag says so.
    Add(String, Box<crate::config::ServerProfile>, bool),
    /// Look again now (after a key press, say) instead of at the next tick.
    Refresh,
}

#[derive(Clone)]
pub struct SupervisorHandle {
    tx: mpsc::Sender<SupCommand>,
    queued: Arc<AtomicUsize>,
}

impl SupervisorHandle {
    /// Queues a command; false when the engine is gone or its queue is full.
    pub fn send(&self, c: SupCommand) -> bool {
        self.tx.try_send(c).is_ok()
    }

    /// The consumer took `ev` off the channel: its log bytes no longer count against
    /// [`QUEUED_LOG_BYTES`].
    pub fn taken(&self, ev: &SupEvent) {
        if let SupEvent::Logs { lines, .. } = ev {
            self.queued.fetch_sub(log_bytes(lines), Ordering::Relaxed);
        }
    }
}

fn log_bytes(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

/// How often the state directory and the logs are looked at.
pub const STATUS_TICK: Duration = Duration::from_millis(250);
pub const LOG_TICK: Duration = Duration::from_millis(100);
/// Logs that have been quiet are looked at less often: an idle console stays idle.
const LOG_IDLE_TICK: Duration = Duration::from_millis(400);
/// A full re-read, whatever the file times say (a monitor can die without writing).
const FULL_REFRESH: Duration = Duration::from_secs(2);
/// With file notifications, the full re-read is only the net under them: a monitor killed
/// with -9 writes nothing and is found by this, every change it writes comes at once.
const WATCHED_REFRESH: Duration = Duration::from_secs(5);
/// Lines of history sent when a log is first seen.
pub const INITIAL_LINES: usize = 500;
/// Most bytes read from one log per tick, so a flood is taken in slices.
const LOG_SLICE: usize = 4 << 20;

pub fn spawn(sup: Supervisor, events: mpsc::Sender<SupEvent>) -> SupervisorHandle {
    let (tx, rx) = mpsc::channel(64);
    let queued = Arc::new(AtomicUsize::new(0));
    let clusters =
        super::cluster_watch::ClusterWatch::new(sup.clone(), events.clone(), queued.clone());
    let engine = Engine::new(sup, events, queued.clone());
    // The engine reads the state directory, /proc and log files on every tick: blocking
    // work, so it runs on a thread of its own with its own small runtime, never on the
    // async workers that serve the UI, chat and load tests.
    let run = move || match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async move {
            // Cluster calls wait on the network, not on files: a task of their own beside
            // the local half, on the same thread.
            if let Some(c) = clusters {
                tokio::spawn(c.run());
            }
            engine.run(rx).await
        }),
        Err(e) => tracing::error!("the supervisor engine cannot start its runtime: {e}"),
    };
    if let Err(e) = std::thread::Builder::new()
        .name("supervisor-engine".into())
        .spawn(run)
    {
        tracing::error!("the supervisor engine cannot start its thread: {e}");
    }
    SupervisorHandle { tx, queued }
}

struct Follow {
    follower: LogFollower,
    /// The history was sent; from now on only new lines.
    primed: bool,
    lost: u64,
}

struct Engine {
    sup: Supervisor,
    events: mpsc::Sender<SupEvent>,
    last: HashMap<String, ServerStatus>,
    mtimes: HashMap<String, Option<SystemTime>>,
    logs: HashMap<String, Follow>,
    /// The servers to watch, re-read with every full refresh (reading the state directory
    /// on every tick costs more than everything else the engine does).
    names: Vec<String>,
    busy: HashSet<String>,
    /// Results not yet delivered because the channel was full.
    pending: std::collections::VecDeque<SupEvent>,
    done_rx: mpsc::UnboundedReceiver<(String, Op, Result<String, String>)>,
    /// Log bytes sent and not yet taken by the consumer.
    queued: Arc<AtomicUsize>,
    done_tx: mpsc::UnboundedSender<(String, Op, Result<String, String>)>,
}

impl Engine {
    fn new(sup: Supervisor, events: mpsc::Sender<SupEvent>, queued: Arc<AtomicUsize>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            sup,
            events,
            last: HashMap::new(),
            mtimes: HashMap::new(),
            logs: HashMap::new(),
            names: Vec::new(),
            busy: HashSet::new(),
            pending: std::collections::VecDeque::new(),
            done_rx,
            done_tx,
            queued,
        }
    }

    /// The engine never waits on its consumer: statuses are latest-value (a status that
    /// does not fit is sent at a later tick), results wait in a queue, and log lines that do
    /// not fit are counted as lost.
    async fn run(mut self, mut rx: mpsc::Receiver<SupCommand>) {
        // File notifications (inotify) tell of a record or a log that changed the moment it
        // does; without them (no inotify, too many watches) the engine polls as before.
        let (note_tx, mut note_rx) = mpsc::channel::<Changed>(256);
        let watcher = watch_state_dir(self.sup.dir().root(), note_tx);
        let watching = watcher.is_some();
        let (status_every, log_idle, full_every) = if watching {
            (WATCHED_REFRESH, WATCHED_REFRESH, WATCHED_REFRESH)
        } else {
            (STATUS_TICK, LOG_IDLE_TICK, FULL_REFRESH)
        };
        let mut status_tick = tokio::time::interval(status_every);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut log_every = LOG_TICK;
        let mut log_at = Instant::now();
        let mut last_full = Instant::now() - full_every;
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(SupCommand::Refresh) => self.statuses(true),
                    Some(SupCommand::Run(op, name)) => self.run_op(op, name),
                    Some(SupCommand::Add(name, p, start)) => {
                        self.sup = self.sup.clone().with_profile(&name, *p);
                        self.names = self.sup.local_names();
                        self.statuses(true);
                        if start {
                            self.run_op(Op::Start, name);
                        }
                    }
                },
                Some(changed) = note_rx.recv() => {
                    // A burst of notifications is one look.
                    let mut c = changed;
                    while let Ok(more) = note_rx.try_recv() {
                        c.records |= more.records;
                        c.logs |= more.logs;
                    }
                    if c.records {
                        // A new server's folder may be among them: list them again (one
                        // directory read), then read only the records that changed.
                        self.names = self.sup.local_names();
                        self.statuses(false);
                    }
                    if c.logs {
                        log_every = LOG_TICK;
                        log_at = Instant::now();
                    }
                }
                Some((name, op, result)) = self.done_rx.recv() => {
                    self.busy.remove(&name);
                    // The record changed under us: report it before the result.
                    self.statuses(true);
                    self.pending.push_back(SupEvent::Done { name, op, result });
                }
                _ = status_tick.tick() => {
                    let full = last_full.elapsed() >= full_every;
                    if full {
                        last_full = Instant::now();
                    }
                    self.statuses(full);
                }
                _ = tokio::time::sleep_until(log_at.into()) => {
                    // Fast while lines arrive; backing off when quiet (to the full-refresh
                    // period when notifications will wake us).
                    log_every = if self.logs() {
                        LOG_TICK
                    } else {
                        (log_every * 2).min(log_idle)
                    };
                    log_at = Instant::now() + log_every;
                }
            }
            if self.events.is_closed() {
                return;
            }
            while let Some(ev) = self.pending.pop_front() {
                if let Err(mpsc::error::TrySendError::Full(ev)) = self.events.try_send(ev) {
                    self.pending.push_front(ev);
                    break;
                }
            }
        }
    }

    fn run_op(&mut self, op: Op, name: String) {
        if !self.busy.insert(name.clone()) {
            self.pending.push_back(SupEvent::Done {
                name,
                op,
                result: Err("another operation on this server is still running".into()),
            });
            return;
        }
        let sup = self.sup.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let result = match op {
                Op::Start => sup.start(&name).await.map(|s| started(&s.status)),
                Op::Restart => sup.restart(&name, None).await.map(|s| started(&s.status)),
                Op::Stop => sup.stop(&name, None).await.map(|s| {
                    format!(
                        "stopped ({})",
                        s.exit_text().unwrap_or_else(|| s.state.to_string())
                    )
                }),
            };
            let result = result.or_else(|e| match e {
                ControlError::AlreadyRunning(st) => Ok(format!("already running ({})", st.state)),
                e => Err(e.to_string()),
            });
            let _ = done.send((name, op, result));
        });
    }

    /// Sends the statuses that changed. `full` re-reads every server; otherwise only those
    /// whose record file changed. A status that does not fit is tried again next time.
    fn statuses(&mut self, full: bool) {
        if full || self.names.is_empty() {
            self.names = self.sup.local_names();
        }
        let names = std::mem::take(&mut self.names);
        // A full pass publishes even when nothing changed: readers wait for a first reading.
        let mut publish = full;
        for name in &names {
            let mtime = std::fs::metadata(self.sup.dir().record_path(name))
                .and_then(|m| m.modified())
                .ok();
            let seen = self.mtimes.get(name).copied();
            if !full && seen == Some(mtime) {
                continue;
            }
            let st = self.sup.status(name);
            let changed = self.last.get(name).is_none_or(|old| differs(old, &st));
            if changed {
                if self
                    .events
                    .try_send(SupEvent::Status(Box::new(st.clone())))
                    .is_err()
                {
                    // Not seen as reported: the next tick looks at this server again.
                    self.mtimes.remove(name);
                    continue;
                }
                self.last.insert(name.clone(), st);
                publish = true;
            }
            self.mtimes.insert(name.clone(), mtime);
        }
        self.names = names;
        if publish {
            // The running servers as just read, for the samplers' attribution.
            self.sup
                .seen()
                .set_running(super::status::running_pids(self.last.values()));
        }
    }

    /// Reads what the logs gained; true when there was something.
    fn logs(&mut self) -> bool {
        let mut any = false;
        let names = std::mem::take(&mut self.names);
        for name in &names {
            let path = self.sup.log_path(name);
            let f = self.logs.entry(name.clone()).or_insert_with(|| Follow {
                follower: LogFollower::from_start(&path),
                primed: false,
                lost: 0,
            });
            let mut lines = Vec::new();
            if !f.primed {
                // History: the whole current file once, keeping its last lines.
                f.follower.poll(usize::MAX, &mut lines);
                let skip = lines.len().saturating_sub(INITIAL_LINES);
                lines.drain(..skip);
                f.primed = true;
            } else {
                f.follower.poll(LOG_SLICE, &mut lines);
            }
            if lines.is_empty() && f.lost == 0 {
                continue;
            }
            any |= !lines.is_empty();
            let n = lines.len() as u64;
            let bytes = log_bytes(&lines);
            if self.queued.load(Ordering::Relaxed) + bytes > QUEUED_LOG_BYTES {
                f.lost += n;
                continue;
            }
            let ev = SupEvent::Logs {
                name: name.clone(),
                lines,
                lost: f.lost,
            };
            match self.events.try_send(ev) {
                Ok(()) => {
                    self.queued.fetch_add(bytes, Ordering::Relaxed);
                    f.lost = 0;
                }
                Err(_) => f.lost += n,
            }
        }
        self.names = names;
        any
    }
}

/// What a burst of file notifications touched.
#[derive(Debug, Clone, Copy, Default)]
struct Changed {
    records: bool,
    logs: bool,
}

/// Watches the state directory (every server's folder, new ones too); `None` when file
/// notifications cannot be had here, and the engine polls.
fn watch_state_dir(
    root: &std::path::Path,
    tx: mpsc::Sender<Changed>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let servers = root.join("servers");
    super::statedir::ensure_private_dir(&servers).ok()?;
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        let mut c = Changed::default();
        for p in &ev.paths {
            match p.file_name().and_then(|n| n.to_str()) {
                Some("record.json") => c.records = true,
                Some(n) if n.starts_with("server.log") => c.logs = true,
                // A folder came or went: a server appeared or was removed.
                _ if ev.kind.is_create() || ev.kind.is_remove() => c.records = true,
                _ => {}
            }
        }
        if c.records || c.logs {
            // Full: a look is already due, and it sees this change too.
            let _ = tx.try_send(c);
        }
    })
    .ok()?;
    w.watch(&servers, RecursiveMode::Recursive).ok()?;
    Some(w)
}

fn started(st: &ServerStatus) -> String {
    match st.pid {
        Some(p) => format!("started (pid {p})"),
        None => "started".into(),
    }
}
