//! The accounting of one streamed answer, by `vllm bench serve`'s definitions, shared by
//! `chat`, the console's chat session and the load test: TTFT is the request's start to the
//! first event with choices, the end is the last such event, the gaps between them are the
//! inter-chunk latencies, and decode speed is the tokens after the first over the time they
//! took (the server's own `usage` count).
use super::types::{StreamEvent, Usage};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AnswerTiming {
    started: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
}

/// What one event meant for the timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    /// The first event with choices.
    First,
    /// A later event with choices, this long after the one before.
    Next(Duration),
    /// The server's token counts.
    Usage,
}

impl AnswerTiming {
    /// `started`: when the request was sent (before the response headers).
    pub fn new(started: Instant) -> Self {
        AnswerTiming {
            started,
            first: None,
            last: None,
            usage: None,
            finish_reason: None,
        }
    }

    pub fn record(&mut self, ev: &StreamEvent) -> Seen {
        match ev {
            StreamEvent::Delta {
                at, finish_reason, ..
            } => {
                if finish_reason.is_some() {
                    self.finish_reason.clone_from(finish_reason);
                }
                self.delta_at(*at)
            }
            StreamEvent::Usage { usage, .. } => {
                self.usage = Some(*usage);
                Seen::Usage
            }
        }
    }

    /// A chunk with choices arrived at `at` (its content and finish reason aside).
    pub fn delta_at(&mut self, at: Instant) -> Seen {
        let seen = match self.last {
            None => {
                self.first = Some(at);
                Seen::First
            }
            Some(p) => Seen::Next(at.saturating_duration_since(p)),
        };
        self.last = Some(at);
        seen
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the last event with choices arrived.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }

    pub fn ttft(&self) -> Option<Duration> {
        self.first
            .map(|f| f.saturating_duration_since(self.started))
    }

    /// Start to the last event with choices (None before the first).
    pub fn e2e(&self) -> Option<Duration> {
        self.last.map(|l| l.saturating_duration_since(self.started))
    }

    /// Decode speed: tokens after the first over the time from the first event to the last.
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        let (f, l, u) = (self.first?, self.last?, self.usage?);
        let span = l.saturating_duration_since(f).as_secs_f64();
        (u.completion_tokens > 1 && span > 0.0).then(|| (u.completion_tokens - 1) as f64 / span)
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(at: Instant, finish: Option<&str>) -> StreamEvent {
        StreamEvent::Delta {
            text: "x".into(),
            at,
            finish_reason: finish.map(String::from),
        }
    }

    #[test]
    fn ttft_gaps_e2e_and_decode_rate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut t = AnswerTiming::new(t0);
        assert_eq!(t.ttft(), None);
        assert_eq!(t.record(&delta(at(100), None)), Seen::First);
        assert_eq!(
            t.record(&delta(at(150), None)),
            Seen::Next(Duration::from_millis(50))
        );
        assert_eq!(
            t.record(&delta(at(300), Some("length"))),
            Seen::Next(Duration::from_millis(150))
        );
        assert_eq!(t.decode_tokens_per_s(), None, "no usage yet");
        let usage = Usage {
            prompt_tokens: 5,
            completion_tokens: 11,
        };
        assert_eq!(
            t.record(&StreamEvent::Usage {
                usage,
                server: None,
                at: at(301)
            }),
            Seen::Usage
        );
        assert_eq!(t.ttft(), Some(Duration::from_millis(100)));
        assert_eq!(t.e2e(), Some(Duration::from_millis(300)));
        assert_eq!(t.finish_reason.as_deref(), Some("length"));
        // 10 tokens after the first in 200 ms.
        assert!((t.decode_tokens_per_s().unwrap() - 50.0).abs() < 1e-9);
    }
}
