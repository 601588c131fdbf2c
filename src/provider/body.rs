//! Turns a streaming HTTP body into timestamped events through a protocol decoder.
use super::{EventStream, ProviderError, StreamEvent};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Instant;

pub type Item = Result<StreamEvent, ProviderError>;

/// One SSE event or one NDJSON line: far above any real chunk, far below what would hurt.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// A whole non-streamed answer.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// An error answer's body: enough for any server's message.
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// A page read for telemetry or control: `/metrics`, a DCGM page, a model list, Ray's API.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// Reads a whole body, but never more than `cap` bytes: a larger one is an error that names
/// the URL and the cap (the connection is dropped, so the server stops sending).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, ProviderError> {
    let url = resp.url().clone();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ProviderError::from_reqwest(&e, true))?
    {
        if buf.len() + chunk.len() > cap {
            return Err(over_cap(url.as_str(), "the body", cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads at most `cap` bytes of a body and says whether there was more (for error bodies,
/// where the start is what matters).
pub async fn read_prefix(mut resp: reqwest::Response, cap: usize) -> (Bytes, bool) {
    let mut buf = bytes::BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return (buf.freeze(), true);
        }
        buf.extend_from_slice(&chunk);
    }
    (buf.freeze(), false)
}

pub fn over_cap(whose: &str, what: &str, cap: usize) -> ProviderError {
    ProviderError::new(
        super::ErrorClass::Decode,
        format!(
            "{what} from {whose} is over the {} cap",
            crate::format::bytes(cap as u64)
        ),
    )
}

/// A protocol's view of the body: bytes in, events out.
pub trait BodyDecoder: Send + 'static {
    /// Decodes `bytes` (which arrived at `at`); returns true once the stream is complete
    /// (terminator seen, or an error was pushed).
    fn push(&mut self, bytes: &[u8], at: Instant, out: &mut VecDeque<Item>) -> bool;
    /// The body ended before `push` said complete: the error to report.
    fn truncated(&mut self) -> ProviderError;
}

/// A body read in units (an SSE event, an NDJSON line): what differs between the dialects.
pub trait UnitDecoder: Default + Send + 'static {
    type Unit: Send;
    /// The unit in errors ("one SSE event").
    const UNIT: &'static str;
    /// Parses `bytes`, adding the whole units to `units`; true when one was over the cap.
    fn parse(&mut self, bytes: &[u8], units: &mut Vec<Self::Unit>) -> bool;
    /// One whole unit; true when it ended the stream.
    fn on_unit(&mut self, unit: &Self::Unit, at: Instant, out: &mut VecDeque<Item>) -> bool;
    fn truncated(&mut self) -> ProviderError;
}

/// A dialect's unit decoder with the buffer its units pass through (kept between reads).
#[derive(Default)]
pub struct Units<D: UnitDecoder> {
    dec: D,
    buf: Vec<D::Unit>,
}

impl<D: UnitDecoder> Units<D> {
    pub fn new() -> Self {
        Self {
            dec: D::default(),
            buf: Vec::new(),
        }
    }
}

impl<D: UnitDecoder> BodyDecoder for Units<D> {
    fn push(&mut self, bytes: &[u8], at: Instant, out: &mut VecDeque<Item>) -> bool {
        if self.dec.parse(bytes, &mut self.buf) {
            out.push_back(Err(over_cap("the server", D::UNIT, MAX_EVENT_BYTES)));
            return true;
        }
        let ended = self.buf.iter().any(|u| self.dec.on_unit(u, at, out));
        self.buf.clear();
        ended
    }

    fn truncated(&mut self) -> ProviderError {
        self.dec.truncated()
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct State<D> {
    body: Option<ByteStream>,
    dec: D,
    queue: VecDeque<Item>,
}

pub fn decode_body<D: BodyDecoder>(resp: reqwest::Response, dec: D) -> EventStream {
    decode_stream(Box::pin(resp.bytes_stream()), dec)
}

pub fn decode_stream<D: BodyDecoder>(body: ByteStream, dec: D) -> EventStream {
    let st = State {
        body: Some(body),
        dec,
        queue: VecDeque::new(),
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            let body = st.body.as_mut()?;
            match body.next().await {
                Some(Ok(bytes)) => {
                    let at = Instant::now();
                    if st.dec.push(&bytes, at, &mut st.queue) {
                        // Dropping the body here closes the connection if the server kept it open.
                        st.body = None;
                    }
                }
                Some(Err(e)) => {
                    st.body = None;
                    st.queue
                        .push_back(Err(ProviderError::from_reqwest(&e, true)));
                }
                None => {
                    st.body = None;
                    let e = st.dec.truncated();
                    st.queue.push_back(Err(e));
                }
            }
        }
    }))
}
