//! Turns a streaming HTTP body into timestamped events through a protocol decoder.
use super::{EventStream, ProviderError, StreamEvent};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Instant;

pub type Item = Result<StreamEvent, ProviderError>;

/// A protocol's view of the body: bytes in, events out.
pub trait BodyDecoder: Send + 'static {
    /// Decodes `bytes` (which arrived at `at`); returns true once the stream is complete
    /// (terminator seen, or an error was pushed).
    fn push(&mut self, bytes: &[u8], at: Instant, out: &mut VecDeque<Item>) -> bool;
    /// The body ended before `push` said complete: the error to report.
    fn truncated(&mut self) -> ProviderError;
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
