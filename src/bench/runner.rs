//! The load generator: closed loop (a target concurrency) or open loop (arrivals at absolute
//! times, optionally capped), warm-up, a stop on requests or duration, live changes of
//! concurrency or rate, and cancellation. Every request sent ends in exactly one bucket.
use super::client_health::{client_verdict, cpu_seconds, measured};
use super::dispatch::{spawn_one, Dispatch, Ran};
pub use super::plan::*;
use super::recorder::{Dist, Recorder};
use super::result::{BenchResult, ClientHealth, Series};
use super::server_metrics::{Armed as ServerArmed, ServerMetrics, ServerSeries};
use super::workload::Workload;
use crate::provider::ProviderKind;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const SERIES_SHOWN: usize = 120;

/// Runs `plan` against `target`. `control` may change concurrency or rate or cancel;
/// `progress` receives snapshots. Returns the result (a cancelled run's too).
pub async fn run(
    target: &BenchTarget,
    plan: &Plan,
    mut control: mpsc::Receiver<Control>,
    progress: watch::Sender<Progress>,
) -> Result<BenchResult, String> {
    let (prompts, prompt_tokens) = super::prepare::prompts(target, plan).await?;
    if let Workload::MultiTurn {
        turns,
        think_time_s,
        ..
    } = plan.workload
    {
        let t = super::conversation::Turns {
            turns,
            think_time_s,
        };
        return multi_turn(target, plan, t, prompts, prompt_tokens, control, progress).await;
    }
    let timeout = crate::input::duration(plan.timeout_s.max(0.001));
    let idle = crate::input::duration(plan.idle_timeout_s.max(0.001));

    let cancelled = warm_up(
        target,
        plan,
        &prompts,
        &mut control,
        &progress,
        timeout,
        idle,
    )
    .await;

    // The server's baseline reading comes before the run's first request.
    let armed = if plan.server_metrics_interval_s > 0.0 && target.kind == ProviderKind::VllmOpenai {
        Some(ServerArmed::new(&target.base_url, &target.model).await)
    } else {
        None
    };
    let cpu0 = cpu_seconds();
    let mut d = Dispatch::new(target, plan, &prompts, (timeout, idle), cancelled);
    let (server, server_error) = match armed {
        Some(Ok(a)) => (
            Some(a.begin(
                crate::input::duration(plan.server_metrics_interval_s.max(0.05)),
                d.run_start,
            )),
            None,
        ),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    drive(target, &mut d, &mut control, &progress, server.as_ref()).await;
    let stops = (d.planned_requests, d.stop_at_s);
    close_window(
        target,
        &mut d.windows,
        d.run_start.elapsed().as_secs_f64(),
        true,
    )
    .await;
    let ran = d.into_ran(cpu0);
    Ok(finish(
        target,
        plan,
        ran,
        server,
        server_error,
        prompt_tokens,
        stops,
        &progress,
    )
    .await)
}

/// A multi-turn run: conversations, their turns' prompts counted as sent.
async fn multi_turn(
    target: &BenchTarget,
    plan: &Plan,
    t: super::conversation::Turns,
    prompts: super::workload::PromptSource,
    mut prompt_tokens: super::exact::PromptTokens,
    control: mpsc::Receiver<Control>,
    progress: watch::Sender<Progress>,
) -> Result<BenchResult, String> {
    let (mut r, per_turn, asked) =
        super::conversation::run(target, plan, t, prompts, control, progress).await?;
    prompt_tokens.asked_total = asked;
    prompt_tokens.sent_total = r.total_input_tokens;
    r.prompt_tokens = Some(prompt_tokens);
    r.per_turn = per_turn;
    Ok(r)
}

/// The run proper: requests sent as the plan says and collected as they end, control
/// obeyed, progress published each tick, until the last request is in.
async fn drive(
    target: &BenchTarget,
    d: &mut Dispatch<'_>,
    control: &mut mpsc::Receiver<Control>,
    progress: &watch::Sender<Progress>,
    server: Option<&super::server_metrics::ServerWatch>,
) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    progress.send_modify(|p| {
        *p = Progress {
            phase: Phase::Running,
            planned_requests: d.planned_requests,
            planned_duration_s: d.stop_at_s,
            ..Progress::default()
        }
    });

    loop {
        d.check_stop(Instant::now());
        d.send_due();
        if d.finished() {
            break;
        }
        let open_wait = d.open_wait();
        let never = d.run_start;
        tokio::select! {
            biased;
            c = control.recv() => d.on_control(c),
            Some(done) = d.inflight.next() => d.on_done(done),
            _ = tokio::time::sleep_until(open_wait.unwrap_or(never).into()), if open_wait.is_some() => {}
            _ = tokio::time::sleep_until(d.stop_deadline.unwrap_or(never).into()), if d.sending && d.stop_deadline.is_some() => {
                d.sending = false;
            }
            _ = tick.tick() => {
                close_window(target, &mut d.windows, d.run_start.elapsed().as_secs_f64(), false).await;
                let phase = if d.sending { Phase::Running } else { Phase::Draining };
                publish(progress, &d.rec, d.run_start, d.inflight.len(), d.load, d.planned_requests, d.stop_at_s, phase, &|off| server.map(|w| w.series(off)));
                if let Some(w) = &d.windows {
                    if progress.borrow().soak.len() != w.closed.len() {
                        progress.send_modify(|p| p.soak = w.closed.clone());
                    }
                }
            }
        }
    }
}

/// A soak run's window closes on time (or, at the end, with what it has), with the
/// server's memory read as it closes.
async fn close_window(
    target: &BenchTarget,
    windows: &mut Option<super::soak::Windows>,
    now_s: f64,
    end: bool,
) {
    let Some(w) = windows.as_mut() else {
        return;
    };
    let closed = match end {
        false => w.tick(now_s).is_some(),
        true => w.finish(now_s).is_some(),
    };
    if !closed {
        return;
    }
    let mem = match &target.memory {
        Some(probe) => probe().await,
        None => None,
    };
    if let Some(last) = windows.as_mut().and_then(|w| w.closed.last_mut()) {
        last.memory = mem;
    }
}

/// The result: vLLM's figures from the recorder, the server's series, the client's own
/// health, the prompts' token counts, the run's settings; and the last progress.
#[allow(clippy::too_many_arguments)]
async fn finish(
    target: &BenchTarget,
    plan: &Plan,
    ran: Ran,
    server: Option<super::server_metrics::ServerWatch>,
    server_error: Option<String>,
    mut prompt_tokens: super::exact::PromptTokens,
    (planned_requests, stop_at_s): (Option<u64>, Option<f64>),
    progress: &watch::Sender<Progress>,
) -> BenchResult {
    let duration = ran.rec.last_end_s.max(ran.last_dispatch_s).max(1e-9);
    let cpu = cpu_seconds() - ran.cpu0;
    let mut result = BenchResult {
        num_prompts: ran.sent as u64,
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
        max_concurrent_requests: ran.peak_in_flight as u64,
        ..target.result()
    };
    result.fill_from(&ran.rec, duration);
    if let (Some(s), Some(w)) = (&plan.soak, &ran.windows) {
        result.soak = Some(super::soak::SoakResult {
            window_s: s.window_s,
            windows: w.closed.clone(),
            rules: s.rules.clone(),
            verdict: super::soak::verdict(&w.closed, &s.rules),
        });
    }
    result.server_metrics = match server {
        Some(w) => Some(w.finish().await),
        None => server_error.map(|e| ServerMetrics {
            error: Some(e),
            ..ServerMetrics::default()
        }),
    };
    result.achieved_request_rate = match (plan.load, plan.stop) {
        (Load::Open { .. }, Stop::Requests(_)) if ran.last_dispatch_s > 0.0 => {
            Some(ran.sent as f64 / ran.last_dispatch_s)
        }
        (Load::Open { .. }, Stop::DurationS(d)) => Some(ran.sent as f64 / d),
        _ => None,
    };
    result.client = client_health(
        target,
        plan,
        &ran,
        cpu,
        duration,
        result.achieved_request_rate,
    );
    prompt_tokens.asked_total = ran.rec.asked_input_tokens;
    prompt_tokens.sent_total = ran.rec.input_tokens;
    repeats_warning(&mut prompt_tokens, ran.sent as u64 + plan.warmup);
    result.prompt_tokens = Some(prompt_tokens);
    result.config = json!({
        "route": target.route,
        "kind": target.kind,
        "load": plan.load,
        "stop": plan.stop,
        "warmup": plan.warmup,
        "workload": plan.workload,
        "ramp": plan.ramp,
        "seed": plan.seed,
        "timeout_s": plan.timeout_s,
        "idle_timeout_s": plan.idle_timeout_s,
        "cancelled": ran.cancelled,
        "changes": ran.changes,
    });
    debug_assert_eq!(
        ran.rec.completed + ran.rec.failed,
        ran.rec.sent,
        "every request ends in one bucket"
    );
    publish(
        progress,
        &ran.rec,
        ran.run_start,
        0,
        ran.load,
        planned_requests,
        stop_at_s,
        Phase::Done,
        &|off| {
            result
                .server_metrics
                .as_ref()
                .filter(|m| !m.samples.is_empty())
                .map(|m| ServerSeries::from_samples(&m.samples, off))
        },
    );
    result
}

/// The client's own figures (time to headers, dispatch lag, CPU) and whether they say the
/// client, not the server, limited the run.
fn client_health(
    target: &BenchTarget,
    plan: &Plan,
    ran: &Ran,
    cpu: f64,
    duration: f64,
    achieved_rate: Option<f64>,
) -> ClientHealth {
    let mut client = ClientHealth {
        dispatch_lag: ran.lag.stats(),
        queue_time: ran.queue.stats(),
        ..measured(&ran.rec, cpu, duration, target.http_client(plan.http))
    };
    client.warnings = client_verdict(&client, plan, achieved_rate);
    client.bound = !client.warnings.is_empty();
    client
}

/// More requests than distinct prompts: a repeat may be answered from vLLM's prefix cache.
fn repeats_warning(prompt_tokens: &mut super::exact::PromptTokens, used: u64) {
    if prompt_tokens.distinct_prompts > 0
        && used > prompt_tokens.distinct_prompts
        && prompt_tokens.warning.is_none()
    {
        prompt_tokens.warning = Some(format!(
            "{used} requests used {} distinct prompts in turn: a repeat may be served from vLLM's prefix cache (give --requests N for as many distinct prompts)",
            prompt_tokens.distinct_prompts
        ));
    }
}

/// Warm-up: `plan.warmup` requests sent and awaited, then forgotten. True when the run was
/// cancelled meanwhile.
async fn warm_up(
    target: &BenchTarget,
    plan: &Plan,
    prompts: &super::workload::PromptSource,
    control: &mut mpsc::Receiver<Control>,
    progress: &watch::Sender<Progress>,
    timeout: Duration,
    idle: Duration,
) -> bool {
    if plan.warmup == 0 {
        return false;
    }
    let mut cancelled = false;
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
            inflight.push(spawn_one(
                target,
                plan,
                prompts,
                (next, None),
                start,
                (timeout, idle),
            ));
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
    cancelled
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
    server: &dyn Fn(usize) -> Option<ServerSeries>,
) {
    let elapsed = start.elapsed().as_secs_f64();
    let full = Series::from_recorder(rec);
    let offset = full.completed.len().saturating_sub(SERIES_SHOWN);
    let tail = |v: &[f64]| v[offset..].to_vec();
    let tail_o = |v: &[Option<f64>]| v[offset..].to_vec();
    let series = Series {
        sent: full.sent[offset..].to_vec(),
        completed: full.completed[offset..].to_vec(),
        failed: full.failed[offset..].to_vec(),
        output_tokens_per_s: tail(&full.output_tokens_per_s),
        concurrency: tail(&full.concurrency),
        ttft_p50_ms: tail_o(&full.ttft_p50_ms),
        ttft_p99_ms: tail_o(&full.ttft_p99_ms),
        e2el_p50_ms: tail_o(&full.e2el_p50_ms),
        e2el_p99_ms: tail_o(&full.e2el_p99_ms),
        itl_p50_ms: tail_o(&full.itl_p50_ms),
        itl_p99_ms: tail_o(&full.itl_p99_ms),
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
        series_offset: rec.seconds_base + offset,
        e2el_bins: rec.e2el.bins(24),
        server: server(rec.seconds_base + offset),
        soak: tx.borrow().soak.clone(),
    };
    tx.send_replace(p);
}
