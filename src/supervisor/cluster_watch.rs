//! The supervisor engine's cluster half: every second it reads each configured cluster (nodes
//! and jobs), reports the cluster profiles' states from their jobs and routes, and follows the
//! logs of their jobs through the Jobs API into the same events as local logs.
use super::cluster_spec::{current, RESTART_MARK};
use super::control::Supervisor;
use super::events::{differs, SupEvent, QUEUED_LOG_BYTES};
use super::status::ServerStatus;
use crate::cluster::ClusterView;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the clusters are read: the 1 Hz, which costs well under 1% of a core
/// (scripts/bench-cluster).
pub const CLUSTER_TICK: Duration = Duration::from_secs(1);
/// How often a running job's log is fetched (the Jobs API returns the whole log).
const LOG_TICK: Duration = Duration::from_secs(2);
/// Lines of history sent when a job's log is first seen (as for local logs).
const INITIAL_LINES: usize = 500;

struct JobLog {
    job: String,
    /// Bytes of the log already sent.
    seen: usize,
    lost: u64,
    /// Restarts the on-failure loop logged (it runs on the node; its log is our only word).
    restarts: u32,
}

pub struct ClusterWatch {
    sup: Supervisor,
    events: mpsc::Sender<SupEvent>,
    queued: Arc<AtomicUsize>,
    views: BTreeMap<String, ClusterView>,
    last: HashMap<String, ServerStatus>,
    /// Jobs seen ready: a route that stops answering is then unhealthy at once.
    ready_jobs: HashSet<String>,
    logs: HashMap<String, JobLog>,
    logs_at: Instant,
}

impl ClusterWatch {
    /// `None` when the config has no clusters.
    pub fn new(
        sup: Supervisor,
        events: mpsc::Sender<SupEvent>,
        queued: Arc<AtomicUsize>,
    ) -> Option<Self> {
        if sup.config().clusters.is_empty() {
            return None;
        }
        Some(Self {
            sup,
            events,
            queued,
            views: BTreeMap::new(),
            last: HashMap::new(),
            ready_jobs: HashSet::new(),
            logs: HashMap::new(),
            logs_at: Instant::now(),
        })
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(CLUSTER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.events.is_closed() {
                return;
            }
            self.read().await;
            self.statuses().await;
            if self.logs_at.elapsed() >= LOG_TICK {
                self.logs_at = Instant::now();
                self.follow_logs().await;
            }
        }
    }

    async fn read(&mut self) {
        let views = self.sup.cluster_jobs().views(&self.views).await;
        for (name, v) in views {
            // The time of the reading alone is no news for the screen.
            let news = self.views.get(&name).is_none_or(|l| {
                let mut a = l.clone();
                a.read_at = v.read_at;
                a != v
            });
            if news {
                let _ = self.events.try_send(SupEvent::Cluster(Box::new(v.clone())));
            }
            self.sup.seen().set_cluster(&v);
            self.views.insert(name, v);
        }
    }

    async fn statuses(&mut self) {
        let jobs = self.sup.cluster_jobs();
        for name in jobs.names() {
            let cname = self.sup.config().servers[&name]
                .cluster
                .clone()
                .unwrap_or_default();
            let Some(view) = self.views.get(&cname) else {
                continue;
            };
            let job = current(&view.jobs, &name, &self.sup.config().file).map(|j| j.id.clone());
            let was_ready = job.as_ref().is_some_and(|j| self.ready_jobs.contains(j));
            let mut st = jobs.status_in(&name, view, was_ready).await;
            if st.state == super::State::Ready {
                if let Some(j) = &job {
                    self.ready_jobs.insert(j.clone());
                }
            }
            if let Some(l) = self.logs.get(&name) {
                st.restarts = l.restarts;
            }
            let changed = self.last.get(&name).is_none_or(|old| differs(old, &st));
            if changed
                && self
                    .events
                    .try_send(SupEvent::Status(Box::new(st.clone())))
                    .is_ok()
            {
                self.last.insert(name, st);
            }
        }
    }

    /// Fetches the logs of the cluster profiles' current jobs and sends what they gained.
    async fn follow_logs(&mut self) {
        let jobs = self.sup.cluster_jobs().clone();
        for (name, st) in self.last.clone() {
            let Some(job) = st.job.clone() else { continue };
            let known = self.logs.get(&name).is_some_and(|l| l.job == job);
            // A finished job's log does not change: fetched once.
            if known && !st.is_running() {
                continue;
            }
            let Ok(text) = jobs.job_logs(&name, &job).await else {
                continue;
            };
            let l = self
                .logs
                .entry(name.clone())
                .or_insert_with(|| JobLog::new(&job));
            let first = l.job != job || l.seen == 0;
            if l.job != job || text.len() < l.seen {
                *l = JobLog::new(&job);
            }
            let new = &text[crate::format::floor_char(&text, l.seen)..];
            // Whole lines only: a line still being written comes with the next fetch.
            let end = new.rfind('\n').map_or(0, |i| i + 1);
            let mut lines: Vec<String> = new[..end].lines().map(String::from).collect();
            if first {
                let skip = lines.len().saturating_sub(INITIAL_LINES);
                lines.drain(..skip);
            }
            l.seen += end;
            l.count_restarts(&new[..end]);
            if lines.is_empty() && l.lost == 0 {
                continue;
            }
            let bytes: usize = lines.iter().map(|x| x.len() + 1).sum();
            let n = lines.len() as u64;
            if self.queued.load(Ordering::Relaxed) + bytes > QUEUED_LOG_BYTES {
                l.lost += n;
                continue;
            }
            let ev = SupEvent::Logs {
                name: name.clone(),
                lines,
                lost: l.lost,
            };
            match self.events.try_send(ev) {
                Ok(()) => {
                    self.queued.fetch_add(bytes, Ordering::Relaxed);
                    l.lost = 0;
                }
                Err(_) => l.lost += n,
            }
        }
    }
}

impl JobLog {
    fn new(job: &str) -> Self {
        Self {
            job: job.to_string(),
            seen: 0,
            lost: 0,
            restarts: 0,
        }
    }

    fn count_restarts(&mut self, text: &str) {
        let n = text.lines().filter(|l| l.starts_with(RESTART_MARK)).count();
        self.restarts += n as u32;
    }
}
