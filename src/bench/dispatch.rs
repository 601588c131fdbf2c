//! The run's dispatch loop, its state and its steps: what may be sent now (a closed loop's
//! free slots, an open loop's due arrivals under its cap), what a control message changes,
//! what a finished request frees. `runner::run` drives it with one `select!`.
use super::arrivals::{self, GapSampler};
use super::plan::{BenchTarget, Control, Load, Plan, Stop};
use super::recorder::{Dist, Outcome, Recorder};
use super::request::{one, request_for};
use super::workload::PromptSource;
use futures::stream::FuturesUnordered;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::task::{JoinError, JoinHandle};

/// What the dispatch loop leaves for the result.
pub(super) struct Ran {
    pub(super) rec: Recorder,
    pub(super) windows: Option<super::soak::Windows>,
    pub(super) lag: Dist,
    pub(super) queue: Dist,
    pub(super) sent: usize,
    pub(super) peak_in_flight: usize,
    pub(super) last_dispatch_s: f64,
    pub(super) cpu0: f64,
    pub(super) cancelled: bool,
    pub(super) changes: Vec<serde_json::Value>,
    pub(super) load: Load,
    pub(super) run_start: Instant,
}

pub(super) struct Dispatch<'a> {
    target: &'a BenchTarget,
    plan: &'a Plan,
    prompts: &'a PromptSource,
    limits: (Duration, Duration),
    pub rec: Recorder,
    /// A soak run's windows, fed as requests end.
    pub windows: Option<super::soak::Windows>,
    lag: Dist,
    queue: Dist,
    pub load: Load,
    pub planned_requests: Option<u64>,
    pub stop_at_s: Option<f64>,
    pub stop_deadline: Option<Instant>,
    /// An open loop with a request count: the whole schedule up front.
    schedule: Option<Vec<Duration>>,
    sampler: Option<GapSampler>,
    next_due: Option<Instant>,
    blocked_since: Option<Instant>,
    last_dispatch_s: f64,
    peak_in_flight: usize,
    sent: usize,
    pub inflight: FuturesUnordered<JoinHandle<(Outcome, Instant)>>,
    freed_at: Instant,
    pub sending: bool,
    cancelled: bool,
    changes: Vec<serde_json::Value>,
    pub run_start: Instant,
}

impl<'a> Dispatch<'a> {
    /// The plan's arrivals, from now.
    pub fn new(
        target: &'a BenchTarget,
        plan: &'a Plan,
        prompts: &'a PromptSource,
        limits: (Duration, Duration),
        cancelled: bool,
    ) -> Self {
        let (planned_requests, stop_at_s) = match plan.stop {
            Stop::Requests(n) => (Some(n), None),
            Stop::DurationS(d) => (None, Some(d)),
        };
        let schedule = match (plan.load, plan.stop) {
            (
                Load::Open {
                    rate, burstiness, ..
                },
                Stop::Requests(n),
            ) => Some(match plan.ramp {
                Some(r) => arrivals::ramp_schedule(n as usize, r, burstiness, plan.seed),
                None => arrivals::schedule(n as usize, rate, burstiness, plan.seed),
            }),
            _ => None,
        };
        let sampler = match plan.load {
            Load::Open {
                rate, burstiness, ..
            } => Some(GapSampler::new(rate, burstiness, plan.seed ^ 0x5eed)),
            Load::Closed { .. } => None,
        };
        let run_start = Instant::now();
        // A counted run lands its last arrival at n/rate (vLLM); a timed one starts at once,
        // so rate × duration requests fall inside [0, duration).
        let next_due = sampler.as_ref().map(|_| match &schedule {
            Some(sch) => run_start + sch[0],
            None => run_start,
        });
        Dispatch {
            target,
            plan,
            prompts,
            limits,
            rec: Recorder {
                bounded_seconds: plan.soak.is_some(),
                ..Recorder::new(plan.slo, plan.detailed)
            },
            windows: plan
                .soak
                .as_ref()
                .map(|s| super::soak::Windows::new(s.window_s)),
            lag: Dist::default(),
            queue: Dist::default(),
            load: plan.load,
            planned_requests,
            stop_at_s,
            stop_deadline: stop_at_s.map(|d| run_start + crate::input::duration(d)),
            schedule,
            sampler,
            next_due,
            blocked_since: None,
            last_dispatch_s: 0.0,
            peak_in_flight: 0,
            sent: 0,
            inflight: FuturesUnordered::new(),
            freed_at: run_start,
            sending: !cancelled,
            cancelled,
            changes: Vec::new(),
            run_start,
        }
    }

    fn all_sent(&self) -> bool {
        self.planned_requests.is_some_and(|n| self.sent as u64 >= n)
    }

    /// Sending stops at the deadline or the last planned request.
    pub fn check_stop(&mut self, now: Instant) {
        if self.stop_deadline.is_some_and(|d| now >= d) || self.all_sent() {
            self.sending = false;
        }
    }

    /// Nothing more to send and nothing in flight.
    pub fn finished(&self) -> bool {
        (!self.sending || self.all_sent()) && self.inflight.is_empty()
    }

    /// Sends every request that may leave now.
    pub fn send_due(&mut self) {
        while self.sending && !self.all_sent() {
            let now = Instant::now();
            let Some((lag_from, waited)) = self.may_send(now) else {
                break;
            };
            self.lag
                .add_us(now.saturating_duration_since(lag_from).as_secs_f64() * 1e6);
            if let Some(w) = waited {
                self.queue.add_us(w.as_secs_f64() * 1e6);
            }
            let i = self.plan.warmup as usize + self.sent;
            self.inflight.push(spawn_one(
                self.target,
                self.plan,
                self.prompts,
                (i, waited),
                self.run_start,
                self.limits,
            ));
            self.sent += 1;
            let at_s = now.saturating_duration_since(self.run_start).as_secs_f64();
            self.rec.note_sent(at_s);
            self.last_dispatch_s = at_s;
            self.peak_in_flight = self.peak_in_flight.max(self.inflight.len());
            self.next_arrival();
            if matches!(self.load, Load::Closed { .. }) {
                self.freed_at = now;
            }
        }
    }

    /// Whether a request may leave at `now`: the moment its lateness is measured from, and
    /// how long it waited for a free slot under an open loop's cap.
    fn may_send(&mut self, now: Instant) -> Option<(Instant, Option<Duration>)> {
        let cap = match self.load {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open {
                max_concurrency, ..
            } => max_concurrency,
        };
        let full = cap.is_some_and(|c| self.inflight.len() >= c);
        match (self.load, self.next_due) {
            (Load::Open { .. }, Some(due)) => {
                if now < due {
                    return None;
                }
                if full {
                    self.blocked_since.get_or_insert(due);
                    return None;
                }
                Some(match self.blocked_since.take() {
                    Some(d) => (
                        self.freed_at.max(d),
                        Some(self.freed_at.saturating_duration_since(d)),
                    ),
                    None => (due, None),
                })
            }
            _ if full => None,
            _ => Some((self.freed_at.max(self.run_start), None)),
        }
    }

    /// An open loop's next arrival: from the schedule, or one gap after the last.
    fn next_arrival(&mut self) {
        if let (Some(due), Some(s)) = (self.next_due, self.sampler.as_mut()) {
            self.next_due = Some(match &self.schedule {
                Some(sch) if self.sent < sch.len() => self.run_start + sch[self.sent],
                Some(_) => due,
                None => due + crate::input::duration(s.next_gap()),
            });
        }
    }

    /// When an open loop next wants to wake (none when it is at its cap).
    pub fn open_wait(&self) -> Option<Instant> {
        match (self.sending, self.load, self.next_due) {
            (
                true,
                Load::Open {
                    max_concurrency, ..
                },
                Some(due),
            ) if max_concurrency.is_none_or(|c| self.inflight.len() < c) => Some(due),
            _ => None,
        }
    }

    pub fn on_control(&mut self, c: Option<Control>) {
        let at_s = self.run_start.elapsed().as_secs_f64();
        match c {
            Some(Control::Cancel) | None => {
                self.cancelled = true;
                self.sending = false;
                // Whatever is still in flight ends as `cancelled`: counted, not lost.
                for h in std::mem::take(&mut self.inflight) {
                    h.abort();
                    self.rec.add(Outcome {
                        start_s: at_s,
                        end_s: at_s,
                        error: Some(("cancelled".into(), "the run was stopped".into())),
                        ..Outcome::default()
                    });
                }
            }
            Some(Control::SetConcurrency(c)) => {
                let c = c.max(1);
                self.load = match self.load {
                    Load::Closed { .. } => Load::Closed { concurrency: c },
                    Load::Open {
                        rate, burstiness, ..
                    } => Load::Open {
                        rate,
                        burstiness,
                        max_concurrency: Some(c),
                    },
                };
                self.changes.push(json!({"at_s": at_s, "concurrency": c}));
            }
            Some(Control::SetRate(r)) => {
                if let (
                    Load::Open {
                        burstiness,
                        max_concurrency,
                        ..
                    },
                    Some(s),
                ) = (self.load, self.sampler.as_mut())
                {
                    let r = r.max(0.001);
                    s.set_rate(r);
                    // The rest of the schedule is drawn at the new rate, from now.
                    self.schedule = None;
                    self.next_due = Some(Instant::now() + crate::input::duration(s.next_gap()));
                    self.load = Load::Open {
                        rate: r,
                        burstiness,
                        max_concurrency,
                    };
                    self.changes.push(json!({"at_s": at_s, "rate": r}));
                }
            }
        }
    }

    /// A request ended: its slot is free and its outcome counted.
    pub fn on_done(&mut self, done: Result<(Outcome, Instant), JoinError>) {
        let (o, end) = match done {
            Ok(x) => x,
            Err(e) => (
                Outcome {
                    error: Some(("client".into(), format!("request task failed: {e}"))),
                    end_s: self.run_start.elapsed().as_secs_f64(),
                    ..Outcome::default()
                },
                Instant::now(),
            ),
        };
        self.freed_at = end;
        if let Some(w) = self.windows.as_mut() {
            w.add(&o);
        }
        self.rec.add(o);
    }

    pub fn into_ran(self, cpu0: f64) -> Ran {
        Ran {
            rec: self.rec,
            windows: self.windows,
            lag: self.lag,
            queue: self.queue,
            sent: self.sent,
            peak_in_flight: self.peak_in_flight,
            last_dispatch_s: self.last_dispatch_s,
            cpu0,
            cancelled: self.cancelled,
            changes: self.changes,
            load: self.load,
            run_start: self.run_start,
        }
    }
}

/// Sends prompt `i` as one request of the plan, timed from `start`.
pub(super) fn spawn_one(
    target: &BenchTarget,
    plan: &Plan,
    prompts: &PromptSource,
    (i, waited): (usize, Option<Duration>),
    start: Instant,
    (timeout, idle): (Duration, Duration),
) -> tokio::task::JoinHandle<(Outcome, Instant)> {
    let p = &prompts.get(i);
    let sent = one(
        target.pick(plan.http),
        request_for(p, plan),
        start,
        timeout,
        idle,
        p.input_len_estimate,
        false,
    );
    tokio::spawn(async move {
        let (mut o, at) = sent.await;
        o.queue_s = waited.map(|w| w.as_secs_f64());
        (o, at)
    })
}
