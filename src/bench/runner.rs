//! The load generator: closed loop (a target concurrency) or open loop (arrivals at absolute
//! times, optionally capped), warm-up, a stop on requests or duration, live changes of
//! concurrency or rate, and cancellation. Every request sent ends in exactly one bucket.
use super::arrivals::{self, GapSampler};
use super::recorder::{Dist, Outcome, Recorder, Slo};
use super::result::{BenchResult, ClientHealth, Series};
use super::workload::{Prompt, Workload};
use crate::provider::error::{ErrorClass, ProviderError};
use crate::provider::pool::{self, Target};
use crate::provider::{ChatRequest, Message, ProviderKind, Router, StreamEvent};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// Keep this many requests in flight.
    Closed { concurrency: usize },
    /// Send at `rate` per second (gamma gaps of shape `burstiness`), at most
    /// `max_concurrency` in flight when given.
    Open {
        rate: f64,
        burstiness: f64,
        max_concurrency: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Requests(u64),
    DurationS(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub load: Load,
    pub stop: Stop,
    /// Requests sent and awaited before the measured run; left out of every figure.
    pub warmup: u64,
    pub workload: Workload,
    pub seed: u64,
    #[serde(skip)]
    pub slo: Slo,
    /// Per request, from sending to the end of the answer.
    pub timeout_s: f64,
    /// Longest gap between two events once the answer has started.
    pub idle_timeout_s: f64,
    pub temperature: Option<f32>,
    /// Keep per-request arrays for the saved result.
    pub detailed: bool,
}

impl Plan {
    pub fn new(load: Load, stop: Stop, workload: Workload) -> Self {
        Self {
            load,
            stop,
            warmup: 0,
            workload,
            seed: 0,
            slo: Slo::default(),
            timeout_s: 600.0,
            idle_timeout_s: 120.0,
            temperature: None,
            detailed: false,
        }
    }
}

/// Where the load goes: a route's own targets, without the router's retries or fallback, so
/// the figures are that server's.
#[derive(Clone)]
pub struct BenchTarget {
    pub route: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    targets: Vec<Arc<Target>>,
    turn: Arc<AtomicUsize>,
    /// Keeps the router (and the built-in simulator it may hold) alive.
    _router: Arc<Router>,
}

impl BenchTarget {
    pub fn from_router(router: Arc<Router>, route: Option<&str>) -> Result<Self, String> {
        let name = route.unwrap_or(router.default_route()).to_string();
        let entry = router
            .route(&name)
            .ok_or_else(|| {
                format!(
                    "unknown route `{name}` (routes: {})",
                    router.route_names().join(", ")
                )
            })?
            .clone();
        let first = entry.targets.first().ok_or("the route has no target")?;
        Ok(Self {
            route: name,
            kind: entry.kind,
            base_url: first.provider.base_url().to_string(),
            model: first.provider.model().to_string(),
            targets: entry.targets.clone(),
            turn: Arc::new(AtomicUsize::new(0)),
            _router: router,
        })
    }

    fn pick(&self) -> Arc<Target> {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        pool::order(&self.targets, Instant::now(), turn)
            .into_iter()
            .next()
            .expect("a route has at least one target")
    }

    fn backend(&self) -> &'static str {
        match self.kind {
            ProviderKind::Ollama => "ollama",
            ProviderKind::Openai => "openai-chat",
            _ => "vllm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    SetConcurrency(usize),
    SetRate(f64),
    Cancel,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Starting,
    Warmup,
    Running,
    /// No more sending; waiting for the requests in flight.
    Draining,
    Done,
}

/// What the console shows while a run goes on (published at most 10 times a second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub elapsed_s: f64,
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub planned_requests: Option<u64>,
    pub planned_duration_s: Option<f64>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2el_p50_ms: Option<f64>,
    pub e2el_p99_ms: Option<f64>,
    pub errors: BTreeMap<String, u64>,
    /// The last two minutes, one point a second.
    pub series: Series,
    /// First second of `series` within the run.
    pub series_offset: usize,
    /// E2E latency histogram: (upper bound ms, count).
    pub e2el_bins: Vec<(f64, u64)>,
}

pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);
const SERIES_SHOWN: usize = 120;

fn class_of(e: &ProviderError) -> String {
    if let Some(s) = e.status {
        return format!("http_{s}");
    }
    match e.class {
        ErrorClass::Connect | ErrorClass::ConnectTimeout => "connection".into(),
        ErrorClass::HeadersTimeout
        | ErrorClass::FirstTokenTimeout
        | ErrorClass::IdleTimeout
        | ErrorClass::TotalTimeout => "timeout".into(),
        ErrorClass::StreamBroken | ErrorClass::Decode => "stream_broken".into(),
        other => other.as_str().to_string(),
    }
}

/// One request, timed the way `vllm bench serve` times it.
async fn one(
    target: Arc<Target>,
    req: ChatRequest,
    run_start: Instant,
    plan_timeout: Duration,
    idle: Duration,
    estimate: u32,
) -> (Outcome, Instant) {
    let _busy = target.track();
    let t0 = Instant::now();
    let mut o = Outcome {
        start_s: t0.saturating_duration_since(run_start).as_secs_f64(),
        prompt_estimate: estimate,
        ..Outcome::default()
    };
    let deadline = t0 + plan_timeout;
    let fail = |o: &mut Outcome, class: String, msg: String| o.error = Some((class, msg));
    let stream = tokio::time::timeout_at(deadline.into(), target.provider.chat_stream(&req)).await;
    let mut stream = match stream {
        Ok(Ok(s)) => {
            o.headers_s = Some(t0.elapsed().as_secs_f64());
            Some(s)
        }
        Ok(Err(e)) => {
            fail(&mut o, class_of(&e), e.message);
            None
        }
        Err(_) => {
            fail(
                &mut o,
                "timeout".into(),
                format!(
                    "no response headers within {:.0} s",
                    plan_timeout.as_secs_f64()
                ),
            );
            None
        }
    };
    let (mut first, mut prev): (Option<Instant>, Option<Instant>) = (None, None);
    let mut cur_sec = u32::MAX;
    if let Some(s) = stream.as_mut() {
        loop {
            let until = match prev {
                Some(p) => (p + idle).min(deadline),
                None => deadline,
            };
            match tokio::time::timeout_at(until.into(), s.next()).await {
                Ok(Some(Ok(StreamEvent::Delta { text, at, .. }))) => {
                    o.events += 1;
                    match prev {
                        None => first = Some(at),
                        Some(p) => o.gaps_us.push(
                            at.saturating_duration_since(p)
                                .as_micros()
                                .min(u128::from(u32::MAX)) as u32,
                        ),
                    }
                    prev = Some(at);
                    if !text.is_empty() {
                        o.content_events += 1;
                        let sec = at.saturating_duration_since(run_start).as_secs() as u32;
                        if sec == cur_sec {
                            if let Some(last) = o.chunk_seconds.last_mut() {
                                last.1 += 1;
                            }
                        } else {
                            o.chunk_seconds.push((sec, 1));
                            cur_sec = sec;
                        }
                    }
                }
                Ok(Some(Ok(StreamEvent::Usage { usage, .. }))) => {
                    o.prompt_tokens = Some(usage.prompt_tokens);
                    o.completion_tokens = Some(usage.completion_tokens);
                }
                Ok(Some(Err(e))) => {
                    fail(&mut o, class_of(&e), e.message);
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    let what = if Instant::now() >= deadline {
                        format!(
                            "the answer did not end within {:.0} s",
                            plan_timeout.as_secs_f64()
                        )
                    } else {
                        format!("no event for {:.0} s", idle.as_secs_f64())
                    };
                    fail(&mut o, "timeout".into(), what);
                    break;
                }
            }
        }
    }
    if o.error.is_none() && first.is_none() {
        fail(
            &mut o,
            "stream_broken".into(),
            "the answer had no event with choices".into(),
        );
    }
    if let Some(f) = first {
        o.ttft_s = Some(f.saturating_duration_since(t0).as_secs_f64());
    }
    if let Some(p) = prev {
        o.e2el_s = Some(p.saturating_duration_since(t0).as_secs_f64());
    }
    // Dropping the stream here closes the connection of a request that failed mid-answer.
    drop(stream);
    let end = Instant::now();
    o.end_s = end.saturating_duration_since(run_start).as_secs_f64();
    (o, end)
}

fn request_for(p: &Prompt, plan: &Plan) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(p.text.clone())],
        max_tokens: Some(p.output_len),
        temperature: plan.temperature,
        ignore_eos: true,
        ..ChatRequest::default()
    }
}

/// A prompt pool for a duration-bounded run; it is cycled.
const DURATION_POOL: usize = 1000;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Runs `plan` against `target`. `control` may change concurrency or rate or cancel;
/// `progress` receives snapshots. Returns the result (a cancelled run's too).
pub async fn run(
    target: &BenchTarget,
    plan: &Plan,
    mut control: mpsc::Receiver<Control>,
    progress: watch::Sender<Progress>,
) -> Result<BenchResult, String> {
    let n_measured = match plan.stop {
        Stop::Requests(n) => n as usize,
        Stop::DurationS(_) => DURATION_POOL,
    };
    let prompts = plan
        .workload
        .prompts(n_measured + plan.warmup as usize, plan.seed)
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs_f64(plan.timeout_s.max(0.001));
    let idle = Duration::from_secs_f64(plan.idle_timeout_s.max(0.001));
    let mut cancelled = false;

    // Warm-up: sent and awaited, then forgotten.
    if plan.warmup > 0 {
        progress.send_modify(|p| p.phase = Phase::Warmup);
        let conc = match plan.load {
            Load::Closed { concurrency } => concurrency,
            Load::Open {
                max_concurrency, ..
            } => max_concurrency.unwrap_or(usize::MAX),
        }
        .clamp(1, plan.warmup as usize);
        let mut next = 0usize;
        let mut inflight = FuturesUnordered::new();
        let start = Instant::now();
        while next < plan.warmup as usize || !inflight.is_empty() {
            while next < plan.warmup as usize && inflight.len() < conc {
                let p = &prompts[next];
                inflight.push(tokio::spawn(one(
                    target.pick(),
                    request_for(p, plan),
                    start,
                    timeout,
                    idle,
                    p.input_len_estimate,
                )));
                next += 1;
            }
            tokio::select! {
                _ = inflight.next() => {}
                c = control.recv() => if matches!(c, Some(Control::Cancel) | None) {
                    cancelled = true;
                    break;
                },
            }
        }
        for h in inflight {
            h.abort();
        }
    }

    let mut rec = Recorder::new(plan.slo, plan.detailed);
    let mut lag = Dist::default();
    let mut queue = Dist::default();
    let mut load = plan.load;
    let planned_requests = match plan.stop {
        Stop::Requests(n) => Some(n),
        Stop::DurationS(_) => None,
    };
    let stop_at_s = match plan.stop {
        Stop::DurationS(d) => Some(d),
        Stop::Requests(_) => None,
    };
    // Open loop with a request count: the whole schedule up front, rescaled to n/rate.
    let mut schedule: Option<Vec<Duration>> = match (plan.load, plan.stop) {
        (
            Load::Open {
                rate, burstiness, ..
            },
            Stop::Requests(n),
        ) => Some(arrivals::schedule(n as usize, rate, burstiness, plan.seed)),
        _ => None,
    };
    let mut sampler = match plan.load {
        Load::Open {
            rate, burstiness, ..
        } => Some(GapSampler::new(rate, burstiness, plan.seed ^ 0x5eed)),
        Load::Closed { .. } => None,
    };
    let cpu0 = cpu_seconds();
    let run_start = Instant::now();
    // A counted run lands its last arrival at n/rate (vLLM); a timed one starts at once, so
    // rate × duration requests fall inside [0, duration).
    let mut next_due: Option<Instant> = sampler.as_ref().map(|_| match &schedule {
        Some(sch) => run_start + sch[0],
        None => run_start,
    });
    let mut blocked_since: Option<Instant> = None;
    let mut last_dispatch_s = 0.0f64;
    let mut peak_in_flight = 0usize;
    let mut sent = 0usize;
    let mut inflight: FuturesUnordered<tokio::task::JoinHandle<(Outcome, Instant)>> =
        FuturesUnordered::new();
    let mut freed_at = run_start;
    let mut sending = !cancelled;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stop_deadline = stop_at_s.map(|d| run_start + Duration::from_secs_f64(d));
    let mut changes: Vec<serde_json::Value> = Vec::new();
    progress.send_modify(|p| {
        *p = Progress {
            phase: Phase::Running,
            planned_requests,
            planned_duration_s: stop_at_s,
            ..Progress::default()
        }
    });

    loop {
        let now = Instant::now();
        if sending {
            if let Some(d) = stop_deadline {
                if now >= d {
                    sending = false;
                }
            }
            if planned_requests.is_some_and(|n| sent as u64 >= n) {
                sending = false;
            }
        }
        // Send what may be sent now.
        while sending && planned_requests.is_none_or(|n| (sent as u64) < n) {
            let now = Instant::now();
            let cap = match load {
                Load::Closed { concurrency } => Some(concurrency),
                Load::Open {
                    max_concurrency, ..
                } => max_concurrency,
            };
            let (lag_from, waited) = match (load, next_due) {
                (Load::Open { .. }, Some(due)) => {
                    if now < due {
                        break;
                    }
                    if cap.is_some_and(|c| inflight.len() >= c) {
                        blocked_since.get_or_insert(due);
                        break;
                    }
                    match blocked_since.take() {
                        Some(d) => (freed_at.max(d), Some(freed_at.saturating_duration_since(d))),
                        None => (due, None),
                    }
                }
                _ => {
                    if cap.is_some_and(|c| inflight.len() >= c) {
                        break;
                    }
                    (freed_at.max(run_start), None)
                }
            };
            lag.add_us(now.saturating_duration_since(lag_from).as_secs_f64() * 1e6);
            if let Some(w) = waited {
                queue.add_us(w.as_secs_f64() * 1e6);
            }
            let p = &prompts[plan.warmup as usize + sent % n_measured];
            inflight.push(tokio::spawn(one(
                target.pick(),
                request_for(p, plan),
                run_start,
                timeout,
                idle,
                p.input_len_estimate,
            )));
            sent += 1;
            rec.sent += 1;
            last_dispatch_s = now.saturating_duration_since(run_start).as_secs_f64();
            peak_in_flight = peak_in_flight.max(inflight.len());
            // The next arrival of an open loop.
            if let (Some(due), Some(s)) = (next_due, sampler.as_mut()) {
                next_due = Some(match &schedule {
                    Some(sch) if sent < sch.len() => run_start + sch[sent],
                    Some(_) => due,
                    None => due + Duration::from_secs_f64(s.next_gap()),
                });
            }
            if matches!(load, Load::Closed { .. }) {
                freed_at = now;
            }
        }
        if (!sending || planned_requests.is_some_and(|n| sent as u64 >= n)) && inflight.is_empty() {
            break;
        }
        let open_wait = match (sending, load, next_due) {
            (
                true,
                Load::Open {
                    max_concurrency, ..
                },
                Some(due),
            ) if max_concurrency.is_none_or(|c| inflight.len() < c) => Some(due),
            _ => None,
        };
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::Cancel) | None => {
                    cancelled = true;
                    sending = false;
                    // Whatever is still in flight ends as `cancelled`: counted, not lost.
                    let now_s = run_start.elapsed().as_secs_f64();
                    for h in std::mem::take(&mut inflight) {
                        h.abort();
                        rec.add(Outcome {
                            start_s: now_s,
                            end_s: now_s,
                            error: Some(("cancelled".into(), "the run was stopped".into())),
                            ..Outcome::default()
                        });
                    }
                }
                Some(Control::SetConcurrency(c)) => {
                    let c = c.max(1);
                    load = match load {
                        Load::Closed { .. } => Load::Closed { concurrency: c },
                        Load::Open { rate, burstiness, .. } => Load::Open { rate, burstiness, max_concurrency: Some(c) },
                    };
                    changes.push(json!({"at_s": run_start.elapsed().as_secs_f64(), "concurrency": c}));
                }
                Some(Control::SetRate(r)) => {
                    if let (Load::Open { burstiness, max_concurrency, .. }, Some(s)) = (load, sampler.as_mut()) {
                        let r = r.max(0.001);
                        s.set_rate(r);
                        // The rest of the schedule is drawn at the new rate, from now.
                        schedule = None;
                        next_due = Some(Instant::now() + Duration::from_secs_f64(s.next_gap()));
                        load = Load::Open { rate: r, burstiness, max_concurrency };
                        changes.push(json!({"at_s": run_start.elapsed().as_secs_f64(), "rate": r}));
                    }
                }
            },
            Some(done) = inflight.next() => {
                let (o, end) = match done {
                    Ok(x) => x,
                    Err(e) => (Outcome { error: Some(("client".into(), format!("request task failed: {e}"))), end_s: run_start.elapsed().as_secs_f64(), ..Outcome::default() }, Instant::now()),
                };
                freed_at = end;
                rec.add(o);
            }
            _ = tokio::time::sleep_until(open_wait.unwrap_or(run_start).into()), if open_wait.is_some() => {}
            _ = tokio::time::sleep_until(stop_deadline.unwrap_or(run_start).into()), if sending && stop_deadline.is_some() => {
                sending = false;
            }
            _ = tick.tick() => {
                publish(&progress, &rec, run_start, inflight.len(), load, planned_requests, stop_at_s, if sending { Phase::Running } else { Phase::Draining });
            }
        }
    }

    let duration = rec.last_end_s.max(last_dispatch_s).max(1e-9);
    let cpu = cpu_seconds() - cpu0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut result = BenchResult {
        date: crate::time::vllm_date(crate::time::unix_now()),
        backend: target.backend().to_string(),
        label: target.route.clone(),
        model_id: target.model.clone(),
        base_url: target.base_url.clone(),
        num_prompts: sent as u64,
        request_rate: match plan.load {
            Load::Open { rate, .. } => Some(rate),
            Load::Closed { .. } => None,
        },
        burstiness: match plan.load {
            Load::Open { burstiness, .. } => burstiness,
            Load::Closed { .. } => 1.0,
        },
        max_concurrency: match plan.load {
            Load::Closed { concurrency } => Some(concurrency as u64),
            Load::Open {
                max_concurrency, ..
            } => max_concurrency.map(|c| c as u64),
        },
        max_concurrent_requests: peak_in_flight as u64,
        ..BenchResult::default()
    };
    result.fill_from(&rec, duration);
    result.achieved_request_rate = match (plan.load, plan.stop) {
        (Load::Open { .. }, Stop::Requests(_)) if last_dispatch_s > 0.0 => {
            Some(sent as f64 / last_dispatch_s)
        }
        (Load::Open { .. }, Stop::DurationS(d)) => Some(sent as f64 / d),
        _ => None,
    };
    let mut client = ClientHealth {
        time_to_headers: rec.headers.stats(),
        headers_to_first_token: rec.after_headers.stats(),
        dispatch_lag: lag.stats(),
        queue_time: queue.stats(),
        cpu_s: cpu,
        cpu_pct: 100.0 * cpu / duration,
        cores,
        ..ClientHealth::default()
    };
    client.warnings = client_verdict(&client, plan, result.achieved_request_rate);
    client.bound = !client.warnings.is_empty();
    result.client = client;
    result.config = json!({
        "route": target.route,
        "kind": target.kind,
        "load": plan.load,
        "stop": plan.stop,
        "warmup": plan.warmup,
        "workload": plan.workload,
        "seed": plan.seed,
        "timeout_s": plan.timeout_s,
        "idle_timeout_s": plan.idle_timeout_s,
        "cancelled": cancelled,
        "changes": changes,
    });
    debug_assert_eq!(
        rec.completed + rec.failed,
        rec.sent,
        "every request ends in one bucket"
    );
    publish(
        &progress,
        &rec,
        run_start,
        0,
        load,
        planned_requests,
        stop_at_s,
        Phase::Done,
    );
    Ok(result)
}

/// When the client, not the server, limited the run, say so: those numbers are not the
/// server's.
fn client_verdict(c: &ClientHealth, plan: &Plan, achieved: Option<f64>) -> Vec<String> {
    let mut w = Vec::new();
    let lag_limit = match plan.load {
        Load::Open { rate, .. } => (100.0 / rate).clamp(1.0, 10.0),
        Load::Closed { .. } => 10.0,
    };
    if c.dispatch_lag.count > 0 && c.dispatch_lag.p99 > lag_limit {
        w.push(format!(
            "requests left late: dispatch lag p99 {:.1} ms (limit {lag_limit:.1} ms); the client could not keep the schedule",
            c.dispatch_lag.p99
        ));
    }
    if c.cpu_pct > 85.0 * c.cores as f64 {
        w.push(format!(
            "the client used {:.0}% of {} cores: it was CPU-bound",
            c.cpu_pct, c.cores
        ));
    }
    if let (
        Load::Open {
            rate,
            max_concurrency: None,
            ..
        },
        Some(a),
    ) = (plan.load, achieved)
    {
        if a < rate * 0.99 {
            w.push(format!("achieved {a:.2} req/s of the {rate:.2} asked for"));
        }
    }
    w
}

#[allow(clippy::too_many_arguments)]
fn publish(
    tx: &watch::Sender<Progress>,
    rec: &Recorder,
    start: Instant,
    in_flight: usize,
    load: Load,
    planned_requests: Option<u64>,
    planned_duration_s: Option<f64>,
    phase: Phase,
) {
    let elapsed = start.elapsed().as_secs_f64();
    let full = Series::from_recorder(rec);
    let offset = full.completed.len().saturating_sub(SERIES_SHOWN);
    let tail = |v: &[f64]| v[offset..].to_vec();
    let tail_o = |v: &[Option<f64>]| v[offset..].to_vec();
    let series = Series {
        completed: full.completed[offset..].to_vec(),
        failed: full.failed[offset..].to_vec(),
        output_tokens_per_s: tail(&full.output_tokens_per_s),
        concurrency: tail(&full.concurrency),
        ttft_p50_ms: tail_o(&full.ttft_p50_ms),
        ttft_p99_ms: tail_o(&full.ttft_p99_ms),
        e2el_p50_ms: tail_o(&full.e2el_p50_ms),
        e2el_p99_ms: tail_o(&full.e2el_p99_ms),
    };
    let q = |d: &Dist, x: f64| (d.count() > 0).then(|| d.quantile_ms(x));
    let p = Progress {
        phase,
        elapsed_s: elapsed,
        sent: rec.sent,
        completed: rec.completed,
        failed: rec.failed,
        in_flight: in_flight as u64,
        planned_requests,
        planned_duration_s,
        concurrency: match load {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open {
                max_concurrency, ..
            } => max_concurrency,
        },
        rate: match load {
            Load::Open { rate, .. } => Some(rate),
            Load::Closed { .. } => None,
        },
        requests_per_s: rec.completed as f64 / elapsed.max(1e-9),
        output_tokens_per_s: rec.output_tokens as f64 / elapsed.max(1e-9),
        ttft_p50_ms: q(&rec.ttft, 0.5),
        ttft_p99_ms: q(&rec.ttft, 0.99),
        e2el_p50_ms: q(&rec.e2el, 0.5),
        e2el_p99_ms: q(&rec.e2el, 0.99),
        errors: rec.errors.clone(),
        series,
        series_offset: offset,
        e2el_bins: rec.e2el.bins(24),
    };
    tx.send_replace(p);
}
