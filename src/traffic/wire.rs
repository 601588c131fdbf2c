//! The gateway feed's events as a reader takes them: owned, and tolerant of what it does not
//! know (a gateway of another version may send more events or fields); the gateway's own
//! `Event` borrows static names and is written, never read.
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    Start {
        id: u64,
        at_ms: u64,
        client: String,
        dialect: String,
        model: String,
        route: String,
        #[serde(default)]
        stream: bool,
    },
    Trying {
        id: u64,
        route: String,
        target: String,
        attempt: u32,
        budget: u32,
    },
    Stage {
        id: u64,
        stage: String,
    },
    Attempt {
        id: u64,
        route: String,
        target: String,
        class: String,
        status: Option<u16>,
        message: String,
    },
    Fallback {
        id: u64,
        from: String,
        to: String,
        reason: String,
        attempt: u32,
        budget: u32,
    },
    FirstToken {
        id: u64,
        ttft_ms: f64,
    },
    End(Box<End>),
    Notice {
        at_ms: u64,
        message: String,
    },
    Second(Box<Second>),
    Lagged {
        missed: u64,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct End {
    pub id: u64,
    pub outcome: String,
    pub class: Option<String>,
    pub status: u16,
    pub route: String,
    pub server: Option<String>,
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
    #[serde(default)]
    pub answer_ms: Option<f64>,
    #[serde(default)]
    pub headers_ms: Option<f64>,
    pub stage: Option<String>,
}

/// One second's aggregate of a gateway: the gateway's own type, read back.
pub use crate::gateway::feed::{CircuitSecond, RouteSecond, SecondStats as Second};

/// One NDJSON line of the feed; `None` for a line that is not an event (said by the caller).
pub fn parse_line(line: &[u8]) -> Result<FeedEvent, String> {
    serde_json::from_slice(line).map_err(|e| format!("unreadable feed line ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_every_kind_and_unknown_ones_read() {
        let e = parse_line(br#"{"type":"trying","id":3,"route":"a","target":"vllm http://x (m)","attempt":1,"budget":4}"#).unwrap();
        assert!(matches!(
            e,
            FeedEvent::Trying {
                id: 3,
                attempt: 1,
                ..
            }
        ));
        let e = parse_line(br#"{"type":"second","t":5,"started":2,"ok":1,"errors":{"connect":1},"routes":{"a":{"requests":2}}}"#).unwrap();
        let FeedEvent::Second(s) = e else { panic!() };
        assert_eq!(
            (s.t, s.errors["connect"], s.routes["a"].requests),
            (5, 1, 2)
        );
        assert_eq!(
            parse_line(br#"{"type":"from_the_future","x":1}"#).unwrap(),
            FeedEvent::Unknown
        );
        assert!(parse_line(b"not json").is_err());
    }
}
