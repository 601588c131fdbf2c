//! One request of a load test, timed the way `vllm bench serve` times it, with its failure
//! class.
use super::plan::{Pick, Plan};
use super::recorder::Outcome;
use super::workload::Prompt;
use crate::provider::error::{ErrorClass, ProviderError};
use crate::provider::lean::scan::LeanEvent;
use crate::provider::lean::LeanStream;
use crate::provider::timing::{AnswerTiming, Seen};
use crate::provider::{ChatRequest, EventStream, Message, StreamEvent, Usage};
use futures::StreamExt;
use std::time::{Duration, Instant};

/// An answer's events from either client.
enum Source {
    Full(EventStream),
    Lean(Box<LeanStream>),
}

/// What the figures take from an event.
enum Ev {
    /// A chunk with choices; its text when the client kept it.
    Delta {
        at: Instant,
        empty: bool,
        text: Option<String>,
    },
    Usage(Usage),
}

impl Source {
    async fn next(&mut self) -> Option<Result<Ev, ProviderError>> {
        match self {
            Source::Full(s) => s.next().await.map(|r| {
                r.map(|ev| match ev {
                    StreamEvent::Delta { text, at, .. } => Ev::Delta {
                        at,
                        empty: text.is_empty(),
                        text: Some(text),
                    },
                    StreamEvent::Usage { usage, .. } => Ev::Usage(usage),
                })
            }),
            Source::Lean(s) => s.next().await.map(|r| {
                r.map(|(ev, at)| match ev {
                    LeanEvent::Delta { empty, text, .. } => Ev::Delta { at, empty, text },
                    LeanEvent::Usage(u) => Ev::Usage(u),
                })
            }),
        }
    }
}

pub(super) fn class_of(e: &ProviderError) -> String {
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
pub(super) async fn one(
    pick: Pick,
    req: ChatRequest,
    run_start: Instant,
    plan_timeout: Duration,
    idle: Duration,
    estimate: u32,
    keep_answer: bool,
) -> (Outcome, Instant) {
    let _busy = pick.target.track();
    let t0 = Instant::now();
    // One gap a token, sized once: growing the vector chunk by chunk cost a handful of
    // reallocations per answer (malloc and free were a quarter of the client's CPU).
    let gaps = req.max_tokens.map_or(64, |n| n as usize + 2).min(65_536);
    let mut o = Outcome {
        start_s: t0.saturating_duration_since(run_start).as_secs_f64(),
        prompt_estimate: estimate,
        gaps_us: Vec::with_capacity(gaps),
        chunk_seconds: Vec::with_capacity(4),
        ..Outcome::default()
    };
    let limits = Limits {
        deadline: t0 + plan_timeout,
        whole: plan_timeout,
        idle,
    };
    let mut timing = AnswerTiming::new(t0);
    let mut stream = match open(&pick, &req, keep_answer, limits).await {
        Ok(s) => {
            o.headers_s = Some(t0.elapsed().as_secs_f64());
            Some(s)
        }
        Err(e) => {
            o.error = Some(e);
            None
        }
    };
    if let Some(s) = stream.as_mut() {
        let mut reading = Reading {
            o: &mut o,
            run_start,
            keep_answer,
            cur_sec: u32::MAX,
        };
        if let Err(e) = read(s, &mut timing, limits, &mut reading).await {
            o.error = Some(e);
        }
    }
    if let Some(u) = timing.usage {
        o.prompt_tokens = Some(u.prompt_tokens);
        o.completion_tokens = Some(u.completion_tokens);
    }
    if o.error.is_none() && timing.ttft().is_none() {
        o.error = Some((
            "stream_broken".into(),
            "the answer had no event with choices".into(),
        ));
    }
    o.ttft_s = timing.ttft().map(|d| d.as_secs_f64());
    o.e2el_s = timing.e2e().map(|d| d.as_secs_f64());
    // Dropping the stream here closes the connection of a request that failed mid-answer.
    drop(stream);
    let end = Instant::now();
    o.end_s = end.saturating_duration_since(run_start).as_secs_f64();
    (o, end)
}

/// A request's time limits: the whole answer's deadline, and the longest quiet between
/// events.
#[derive(Clone, Copy)]
struct Limits {
    deadline: Instant,
    whole: Duration,
    idle: Duration,
}

type Failure = (String, String);

/// Sends the request with the lean client when the plan uses it (and the provider has a
/// raw form), else the full one; fails at the deadline with no response headers.
async fn open(
    pick: &Pick,
    req: &ChatRequest,
    keep_answer: bool,
    limits: Limits,
) -> Result<Source, Failure> {
    let target = &pick.target;
    let raw = pick
        .lean
        .as_ref()
        .and_then(|_| target.provider.sse_request(req));
    let opened = async {
        match (&pick.lean, raw) {
            (Some(c), Some(raw)) => c
                .send(&raw, keep_answer)
                .await
                .map(|s| Source::Lean(Box::new(s))),
            _ => target.provider.chat_stream(req).await.map(Source::Full),
        }
    };
    match tokio::time::timeout_at(limits.deadline.into(), opened).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err((class_of(&e), e.message)),
        Err(_) => Err((
            "timeout".into(),
            format!(
                "no response headers within {:.0} s",
                limits.whole.as_secs_f64()
            ),
        )),
    }
}

/// Reads the answer's events to its end, a failure, or a timeout.
async fn read(
    s: &mut Source,
    timing: &mut AnswerTiming,
    limits: Limits,
    reading: &mut Reading<'_>,
) -> Result<(), Failure> {
    // The deadline for the next event: the whole timeout for the first, then `idle` after
    // the last one. One timer per request: it is moved earlier when the first event makes the
    // deadline earlier, and later only when it fires before the deadline (setting a timer for
    // every streamed chunk cost more than parsing the chunk).
    let due = |timing: &AnswerTiming| match timing.last() {
        Some(p) => (p + limits.idle).min(limits.deadline),
        None => limits.deadline,
    };
    let mut armed = due(timing);
    let sleep = tokio::time::sleep_until(armed.into());
    tokio::pin!(sleep);
    loop {
        let next = tokio::select! {
            biased;
            n = s.next() => Some(n),
            _ = &mut sleep => None,
        };
        let ev = match next {
            Some(Some(Ok(ev))) => ev,
            Some(Some(Err(e))) => return Err((class_of(&e), e.message)),
            Some(None) => return Ok(()),
            None => {
                let d = due(timing);
                if Instant::now() < d {
                    armed = d;
                    sleep.as_mut().reset(d.into());
                    continue;
                }
                return Err(("timeout".into(), timed_out(limits)));
            }
        };
        let seen = match &ev {
            Ev::Delta { at, .. } => timing.delta_at(*at),
            Ev::Usage(u) => {
                timing.usage = Some(*u);
                Seen::Usage
            }
        };
        let d = due(timing);
        if d < armed {
            armed = d;
            sleep.as_mut().reset(d.into());
        }
        reading.note(seen, ev);
    }
}

fn timed_out(limits: Limits) -> String {
    if Instant::now() >= limits.deadline {
        format!(
            "the answer did not end within {:.0} s",
            limits.whole.as_secs_f64()
        )
    } else {
        format!(
            "no event for {} s",
            crate::format::trim_float(limits.idle.as_secs_f64())
        )
    }
}

/// What an answer's events leave in its outcome: the gaps, the events with and without
/// text, the text when kept, and how many text chunks arrived in each second of the run.
struct Reading<'o> {
    o: &'o mut Outcome,
    run_start: Instant,
    keep_answer: bool,
    cur_sec: u32,
}

impl Reading<'_> {
    #[inline]
    fn note(&mut self, seen: Seen, ev: Ev) {
        let o = &mut *self.o;
        match seen {
            Seen::Usage => return,
            Seen::First => {}
            Seen::Next(gap) => o
                .gaps_us
                .push(gap.as_micros().min(u128::from(u32::MAX)) as u32),
        }
        o.events += 1;
        let Ev::Delta { at, empty, text } = ev else {
            return;
        };
        if self.keep_answer {
            if let Some(t) = text {
                o.answer.get_or_insert_with(String::new).push_str(&t);
            }
        }
        if empty {
            return;
        }
        o.content_events += 1;
        let sec = at.saturating_duration_since(self.run_start).as_secs() as u32;
        match o.chunk_seconds.last_mut() {
            Some(last) if sec == self.cur_sec => last.1 += 1,
            _ => {
                o.chunk_seconds.push((sec, 1));
                self.cur_sec = sec;
            }
        }
    }
}

pub(super) fn request_for(p: &Prompt, plan: &Plan) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(p.text.clone())],
        max_tokens: Some(p.output_len),
        temperature: plan.temperature,
        ignore_eos: true,
        ..ChatRequest::default()
    }
}
