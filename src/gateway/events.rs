//! The feed's wire format, one type for both ends: the gateway writes these events (names it
//! knows statically are borrowed, not copied) and the console reads them back, tolerant of
//! what a gateway of another version adds or leaves out (missing figures default, an event
//! of an unknown type reads as `Unknown`).
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A name the gateway writes from a fixed set (`openai`, `ok`, `streaming`) and a reader owns.
pub type Name = Cow<'static, str>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Start(Arrival),
    /// An attempt starts: the route and target tried, its number, and the request's budget.
    Trying {
        id: u64,
        route: String,
        target: String,
        attempt: u32,
        budget: u32,
    },
    /// The request moved on: `waiting_first_token` once the target sent its headers.
    Stage {
        id: u64,
        stage: Name,
    },
    /// A failed attempt on the way to an answer (or to the final failure).
    Attempt {
        id: u64,
        route: String,
        target: String,
        class: String,
        status: Option<u16>,
        message: String,
    },
    /// Served by another route than the one asked for.
    Fallback {
        id: u64,
        from: String,
        to: String,
        reason: String,
        /// The attempt that answered, and the request's attempt budget.
        attempt: u32,
        budget: u32,
    },
    FirstToken {
        id: u64,
        ttft_ms: f64,
    },
    End(Box<Ended>),
    /// Something the operator should know: a config reload, a drain, a refusal.
    Notice {
        at_ms: u64,
        message: String,
    },
    Second(Box<SecondStats>),
    /// This reader fell behind and missed events.
    Lagged {
        missed: u64,
    },
    /// An event of a type this build does not know (read, never written).
    #[serde(other)]
    Unknown,
}

/// A request arrived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Arrival {
    pub id: u64,
    /// Unix time, ms.
    pub at_ms: u64,
    pub client: String,
    pub dialect: Name,
    pub model: String,
    pub route: String,
    #[serde(default)]
    pub stream: bool,
}

/// A request ended, with where its time went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ended {
    pub id: u64,
    /// `ok`, `error` (with its class), or `cancelled` (the client left).
    pub outcome: Name,
    pub class: Option<String>,
    pub status: u16,
    pub route: String,
    pub server: Option<String>,
    /// `tiny_qwen x connect -> ollama ok`.
    #[serde(default)]
    pub chain: String,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    pub ttft_ms: Option<f64>,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub queue_ms: f64,
    #[serde(default)]
    pub upstream_ms: f64,
    #[serde(default)]
    pub overhead_us: f64,
    /// Since arrival: the answering (last) attempt began, and its response head came.
    #[serde(default)]
    pub answer_ms: Option<f64>,
    #[serde(default)]
    pub headers_ms: Option<f64>,
    /// Where a cancelled request was: queued, connecting, streaming, ...
    #[serde(default)]
    pub stage: Option<Name>,
}

/// One second's aggregate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SecondStats {
    /// Unix time of the second's start, s.
    pub t: u64,
    pub started: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub cancelled: u64,
    pub fallbacks: u64,
    pub refused: u64,
    pub in_flight: usize,
    pub queued: usize,
    pub completion_tokens: u64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub overhead_p50_us: Option<f64>,
    pub overhead_p99_us: Option<f64>,
    /// Per route that served: requests, errors, TTFT p50/p99, tokens.
    pub routes: BTreeMap<String, RouteSecond>,
    /// Every target's circuit at the second's end, route by route in the config's order.
    pub circuits: Vec<CircuitSecond>,
}

/// One target's circuit as the second ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CircuitSecond {
    pub route: String,
    pub target: String,
    /// closed, open, half_open.
    pub state: String,
    pub reopens_in_ms: Option<u64>,
    pub consecutive_failures: u32,
    /// Times it has opened since the gateway started.
    pub trips: u32,
    pub last_error: Option<String>,
    /// The last failure's class (`rate_limited`: held open by the upstream's `Retry-After`).
    pub last_class: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RouteSecond {
    /// Requests ended on this route in the second.
    pub requests: u64,
    /// Attempts on this route still running as the second ended.
    pub in_flight: usize,
    pub errors: u64,
    pub fallbacks_in: u64,
    pub fallbacks_out: u64,
    pub completion_tokens: u64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
}

/// One NDJSON line of the feed.
pub fn parse_line(line: &[u8]) -> Result<Event, String> {
    serde_json::from_slice(line).map_err(|e| format!("unreadable feed line ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_gateway_writes_reads_back_the_same() {
        let events = [
            Event::Start(Arrival {
                id: 1,
                at_ms: 2,
                client: "app".into(),
                dialect: "openai".into(),
                model: "m".into(),
                route: "r".into(),
                stream: true,
            }),
            Event::Stage {
                id: 1,
                stage: "waiting_first_token".into(),
            },
            Event::End(Box::new(Ended {
                id: 1,
                outcome: "cancelled".into(),
                class: None,
                status: 499,
                route: "r".into(),
                server: Some("http://s".into()),
                chain: "r ok".into(),
                prompt_tokens: 3,
                completion_tokens: 4,
                ttft_ms: Some(5.0),
                duration_ms: 6.0,
                queue_ms: 0.5,
                upstream_ms: 5.5,
                overhead_us: 40.0,
                answer_ms: Some(0.6),
                headers_ms: None,
                stage: Some("streaming".into()),
            })),
            Event::Second(Box::new(SecondStats {
                t: 9,
                ok: 1,
                ..SecondStats::default()
            })),
        ];
        for e in events {
            let line = serde_json::to_vec(&e).unwrap();
            assert_eq!(parse_line(&line).unwrap(), e);
        }
    }

    #[test]
    fn events_of_every_kind_and_unknown_ones_read() {
        let e = parse_line(br#"{"type":"trying","id":3,"route":"a","target":"vllm http://x (m)","attempt":1,"budget":4}"#).unwrap();
        assert!(matches!(
            e,
            Event::Trying {
                id: 3,
                attempt: 1,
                ..
            }
        ));
        let e = parse_line(br#"{"type":"second","t":5,"started":2,"ok":1,"errors":{"connect":1},"routes":{"a":{"requests":2}}}"#).unwrap();
        let Event::Second(s) = e else { panic!() };
        assert_eq!(
            (s.t, s.errors["connect"], s.routes["a"].requests),
            (5, 1, 2)
        );
        // An older gateway's end, without the figures added since, still reads.
        let e = parse_line(br#"{"type":"end","id":1,"outcome":"ok","class":null,"status":200,"route":"r","server":null,"ttft_ms":null,"stage":null}"#).unwrap();
        let Event::End(e) = e else { panic!() };
        assert_eq!((e.outcome.as_ref(), e.duration_ms), ("ok", 0.0));
        assert_eq!(
            parse_line(br#"{"type":"from_the_future","x":1}"#).unwrap(),
            Event::Unknown
        );
        assert!(parse_line(b"not json").is_err());
    }
}
