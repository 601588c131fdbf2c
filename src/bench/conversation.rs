//! Multi-turn load: conversations of `turns` turns, each turn sending the whole history (its
//! questions and the server's own answers so far) plus a new question, after an optional think
//! time. A closed loop of `concurrency` conversations at a time; `--requests` counts
//! conversations. Every turn is one request in the usual figures, and the per-turn TTFT shows
//! what the growing history costs.
use super::client_health::{cpu_seconds, measured};
use super::plan::{BenchTarget, Control, Load, Phase, Plan, Progress, Stop};
use super::recorder::{Dist, Outcome, Recorder};
use super::request::one;
use super::result::BenchResult;
pub use super::result::TurnStats;
use super::workload::PromptSource;
use crate::provider::{ChatRequest, Message};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

enum Msg {
    Sent(f64),
    Done(u32, Box<Outcome>),
}

/// The conversation plan: turns, think time, and the questions' source.
pub struct Turns {
    pub turns: u32,
    pub think_time_s: f64,
}

/// Runs `plan`'s conversations against `target`; `Cancel` stops starting new turns.
pub async fn run(
    target: &BenchTarget,
    plan: &Plan,
    turns: Turns,
    prompts: PromptSource,
    mut control: mpsc::Receiver<Control>,
    progress: watch::Sender<Progress>,
) -> Result<(BenchResult, Vec<TurnStats>, u64), String> {
    let Load::Closed { concurrency } = plan.load else {
        return Err(
            "multi-turn conversations run in a closed loop: give --concurrency, not --rate".into(),
        );
    };
    let t = turns.turns.max(1);
    let conversations = match plan.stop {
        Stop::Requests(n) => Some(n),
        Stop::DurationS(_) => None,
    };
    let cpu0 = cpu_seconds();
    let run_start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        plan: plan.clone(),
        prompts,
        turns: t,
        think: crate::input::duration(turns.think_time_s.max(0.0)),
        limits: (
            crate::input::duration(plan.timeout_s.max(0.001)),
            crate::input::duration(plan.idle_timeout_s.max(0.001)),
        ),
        conversations,
        stop_at: match plan.stop {
            Stop::DurationS(d) => Some(run_start + crate::input::duration(d)),
            Stop::Requests(_) => None,
        },
        run_start,
        next: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(shared.clone(), tx.clone())))
        .collect();
    drop(tx);

    let mut rec = Recorder::new(plan.slo, plan.detailed);
    let mut per_turn: Vec<PerTurn> = (0..t).map(|_| PerTurn::default()).collect();
    let mut in_flight = 0u64;
    let mut cancelled = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                None => break,
                Some(Msg::Sent(at)) => {
                    rec.note_sent(at);
                    in_flight += 1;
                }
                Some(Msg::Done(k, o)) => {
                    in_flight = in_flight.saturating_sub(1);
                    per_turn[k as usize].add(&o);
                    let mut o = *o;
                    o.answer = None;
                    rec.add(o);
                }
            },
            c = control.recv(), if !cancelled => if matches!(c, Some(Control::Cancel) | None) {
                cancelled = true;
                shared.stopping.store(true, Ordering::Relaxed);
            },
            _ = tick.tick() => {
                let draining = shared.stopping.load(Ordering::Relaxed);
                publish(&progress, &rec, run_start, in_flight, conversations.map(|n| n * u64::from(t)), concurrency, draining);
            }
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let result = result_of(target, plan, &rec, concurrency, cpu0, cancelled);
    let turns = per_turn
        .iter()
        .enumerate()
        .map(|(k, p)| p.stats(k as u32 + 1))
        .collect();
    debug_assert_eq!(rec.completed + rec.failed, rec.sent);
    progress.send_modify(|p| {
        p.phase = Phase::Done;
        p.sent = rec.sent;
        p.completed = rec.completed;
        p.failed = rec.failed;
        p.in_flight = 0;
    });
    // Asked: the questions' own tokens; the server counted the histories too.
    Ok((result, turns, rec.asked_input_tokens))
}

/// What every conversation worker reads: the plan, and who takes the next conversation.
struct Shared {
    target: BenchTarget,
    plan: Plan,
    prompts: PromptSource,
    turns: u32,
    think: Duration,
    limits: (Duration, Duration),
    conversations: Option<u64>,
    stop_at: Option<Instant>,
    run_start: Instant,
    next: AtomicU64,
    stopping: AtomicBool,
}

/// One of `concurrency` workers: takes conversations until they run out, the time is up or
/// the run is stopped.
async fn worker(sh: Arc<Shared>, tx: mpsc::UnboundedSender<Msg>) {
    loop {
        let c = sh.next.fetch_add(1, Ordering::Relaxed);
        let over = sh.conversations.is_some_and(|n| c >= n)
            || sh.stop_at.is_some_and(|s| Instant::now() >= s);
        if over || sh.stopping.load(Ordering::Relaxed) {
            return;
        }
        if !conversation(&sh, c, &tx).await {
            return;
        }
    }
}

/// Conversation `c`, turn by turn; false when the run was stopped meanwhile.
async fn conversation(sh: &Shared, c: u64, tx: &mpsc::UnboundedSender<Msg>) -> bool {
    let (timeout, idle) = sh.limits;
    let mut history: Vec<Message> = Vec::new();
    for k in 0..sh.turns {
        if sh.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let q = sh
            .prompts
            .get((c * u64::from(sh.turns) + u64::from(k)) as usize);
        history.push(Message::user(q.text.clone()));
        let req = ChatRequest {
            messages: history.clone(),
            max_tokens: Some(q.output_len),
            temperature: sh.plan.temperature,
            ignore_eos: true,
            ..ChatRequest::default()
        };
        let _ = tx.send(Msg::Sent(sh.run_start.elapsed().as_secs_f64()));
        let (o, _) = one(
            sh.target.pick(sh.plan.http),
            req,
            sh.run_start,
            timeout,
            idle,
            q.input_len_estimate,
            true,
        )
        .await;
        let ok = o.ok();
        let answer = o.answer.clone().unwrap_or_default();
        let _ = tx.send(Msg::Done(k, Box::new(o)));
        if !ok {
            // A conversation whose turn failed has no history to go on with.
            return true;
        }
        history.push(Message::assistant(answer));
        if k + 1 < sh.turns && !sh.think.is_zero() {
            tokio::time::sleep(sh.think).await;
        }
    }
    true
}

/// One turn's figures across conversations.
#[derive(Default)]
struct PerTurn {
    ttft: Dist,
    e2el: Dist,
    completed: u64,
    failed: u64,
    prompt_tokens: u64,
}

impl PerTurn {
    fn add(&mut self, o: &Outcome) {
        if !o.ok() {
            self.failed += 1;
            return;
        }
        self.completed += 1;
        if let Some(s) = o.ttft_s {
            self.ttft.add_us(s * 1e6);
        }
        if let Some(s) = o.e2el_s {
            self.e2el.add_us(s * 1e6);
        }
        self.prompt_tokens += o.prompt_tokens.unwrap_or(u64::from(o.prompt_estimate));
    }

    fn stats(&self, turn: u32) -> TurnStats {
        let q = |d: &Dist, x: f64| (d.count() > 0).then(|| d.quantile_ms(x));
        TurnStats {
            turn,
            completed: self.completed,
            failed: self.failed,
            ttft_p50_ms: q(&self.ttft, 0.5),
            ttft_p99_ms: q(&self.ttft, 0.99),
            e2el_p50_ms: q(&self.e2el, 0.5),
            mean_prompt_tokens: (self.completed > 0)
                .then(|| self.prompt_tokens as f64 / self.completed as f64),
        }
    }
}

fn publish(
    progress: &watch::Sender<Progress>,
    rec: &Recorder,
    run_start: Instant,
    in_flight: u64,
    planned_requests: Option<u64>,
    concurrency: usize,
    draining: bool,
) {
    let elapsed = run_start.elapsed().as_secs_f64();
    progress.send_modify(|p| {
        p.phase = if draining {
            Phase::Draining
        } else {
            Phase::Running
        };
        p.elapsed_s = elapsed;
        p.sent = rec.sent;
        p.completed = rec.completed;
        p.failed = rec.failed;
        p.in_flight = in_flight;
        p.planned_requests = planned_requests;
        p.concurrency = Some(concurrency);
        p.requests_per_s = rec.completed as f64 / elapsed.max(1e-9);
        p.output_tokens_per_s = rec.output_tokens as f64 / elapsed.max(1e-9);
    });
}

/// The usual figures over every turn of every conversation, and the client's health.
fn result_of(
    target: &BenchTarget,
    plan: &Plan,
    rec: &Recorder,
    concurrency: usize,
    cpu0: f64,
    cancelled: bool,
) -> BenchResult {
    let duration = rec.last_end_s.max(1e-9);
    let cpu = cpu_seconds() - cpu0;
    let mut result = BenchResult {
        num_prompts: rec.sent,
        burstiness: 1.0,
        max_concurrency: Some(concurrency as u64),
        ..target.result()
    };
    result.fill_from(rec, duration);
    result.client = measured(rec, cpu, duration, target.http_client(plan.http));
    result.config = json!({
        "route": target.route,
        "kind": target.kind,
        "load": plan.load,
        "stop": plan.stop,
        "workload": plan.workload,
        "seed": plan.seed,
        "cancelled": cancelled,
    });
    result
}
