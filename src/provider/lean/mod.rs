//! A lean client for OpenAI-style SSE over plain `http://` (how vLLM is served), used by the
//! load test and by the gateway's streams: one task writes the request, reads the socket,
//! undoes the body's framing, splits the SSE events and reads only what its caller needs. The provider's reqwest client costs about
//! twice the CPU per streamed chunk: its connection task hands every chunk to the request's
//! task through a channel, and every chunk becomes owned `String`s. TLS, Ollama's NDJSON and
//! a proxy in the environment keep the reqwest path (`Pick::lean` is `None` there).
mod body;
pub mod framing;
pub mod scan;
mod template;

use crate::provider::error::{classify_http, ErrorClass, ProviderError};
use crate::provider::RawSseRequest;
use body::Body;
use framing::Framing;
use scan::{End, LeanEvent, Scanner};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head taken.
const MAX_HEAD: usize = 64 << 10;
/// A pooled connection idle this long is not reused: servers close idle ones (uvicorn after
/// 5 s) and a request sent on a closing connection would be lost.
const MAX_IDLE: Duration = Duration::from_secs(2);
/// A body's read buffer starts small (a paced stream reads one chunk at a time, and a
/// gateway holds thousands of them) and grows once a read fills it (a burst).
const READ_MIN: usize = 2 << 10;
const READ_BUF: usize = 16 << 10;

/// One server's connections, kept alive between requests as reqwest's pool keeps them.
pub struct LeanClient {
    authority: String,
    connect_timeout: Duration,
    /// Idle connections by pool (see [`use_own_pool`]), the freshest last.
    idle: Mutex<Vec<(u64, Idle)>>,
}

/// One pool's idle connections, each with when it went idle.
type Idle = Vec<(TcpStream, Instant)>;

thread_local! {
    static POOL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Makes this thread take and return upstream connections in a pool of its own. For a
/// thread that runs a runtime of its own (a gateway worker): its connections are registered
/// with its own reactor, and one used by another thread would cost a hand-over between
/// threads on every read. Threads of a shared runtime keep the shared pool (0).
pub fn use_own_pool(key: u64) {
    POOL.with(|p| p.set(key));
}

/// Whether an environment variable routes plain HTTP through a proxy (reqwest honours these).
pub fn proxy_in_env() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

impl LeanClient {
    pub fn new(authority: String, connect_timeout: Duration) -> Self {
        Self {
            authority,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn pooled(&self) -> Option<TcpStream> {
        let key = POOL.with(std::cell::Cell::get);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (_, mine) = idle.iter_mut().find(|(k, _)| *k == key)?;
        while let Some((s, since)) = mine.pop() {
            if since.elapsed() < MAX_IDLE {
                return Some(s);
            }
        }
        None
    }

    fn give_back(&self, s: TcpStream) {
        let key = POOL.with(std::cell::Cell::get);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = match idle.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                idle.push((key, Vec::new()));
                idle.len() - 1
            }
        };
        idle[at].1.push((s, Instant::now()));
    }

    async fn connect(&self) -> Result<TcpStream, ProviderError> {
        let c = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority));
        let s = match c.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ProviderError::new(
                    ErrorClass::Connect,
                    format!("cannot connect to {}: {e}", self.authority),
                ))
            }
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorClass::ConnectTimeout,
                    format!(
                        "no connection to {} within {:.1} s",
                        self.authority,
                        self.connect_timeout.as_secs_f64()
                    ),
                ))
            }
        };
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    /// Sends the request; returns once the response head is in (as `chat_stream` does). A
    /// pooled connection the server closed meanwhile is replaced once, before any byte of
    /// the answer, as hyper retries a request on a connection found closed.
    pub async fn send(
        self: &std::sync::Arc<Self>,
        req: &RawSseRequest,
        keep_text: bool,
    ) -> Result<LeanStream, ProviderError> {
        let wire = request_bytes(req);
        if let Some(s) = self.pooled() {
            match self.exchange(s, &wire).await {
                Ok(x) => return self.stream(x, keep_text).await,
                Err(Exchange::Closed) => {}
                Err(Exchange::Failed(e)) => return Err(e),
            }
        }
        let s = self.connect().await?;
        match self.exchange(s, &wire).await {
            Ok(x) => self.stream(x, keep_text).await,
            Err(Exchange::Closed) => Err(ProviderError::new(
                ErrorClass::StreamBroken,
                format!("{} closed the connection before answering", self.authority),
            )),
            Err(Exchange::Failed(e)) => Err(e),
        }
    }

    async fn exchange(&self, mut s: TcpStream, wire: &[u8]) -> Result<Head, Exchange> {
        if s.write_all(wire).await.is_err() {
            return Err(Exchange::Closed);
        }
        let mut buf = Vec::with_capacity(READ_MIN);
        loop {
            let mut chunk = [0u8; 4096];
            let n = match s.read(&mut chunk).await {
                Ok(0) | Err(_) if buf.is_empty() => return Err(Exchange::Closed),
                Ok(0) => return Err(Exchange::Failed(self.broken("in the response head"))),
                Err(e) => {
                    return Err(Exchange::Failed(ProviderError::new(
                        ErrorClass::StreamBroken,
                        format!("reading the response of {}: {e}", self.authority),
                    )))
                }
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head::read(&r, s, buf[len..].to_vec())
                        .map_err(|e| Exchange::Failed(self.broken(&e)))?;
                    // 1xx (100 Continue): the real answer follows.
                    if (100..200).contains(&head.status) {
                        let Head { sock, rest, .. } = head;
                        s = sock;
                        buf = rest;
                        continue;
                    }
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Exchange::Failed(self.broken("a response head over 64 KiB")))
                }
                Err(e) => {
                    return Err(Exchange::Failed(ProviderError::new(
                        ErrorClass::Decode,
                        format!("unreadable response head from {}: {e}", self.authority),
                    )))
                }
            }
        }
    }

    fn broken(&self, what: &str) -> ProviderError {
        ProviderError::new(
            ErrorClass::StreamBroken,
            format!("{}: {what}", self.authority),
        )
    }

    async fn stream(
        self: &std::sync::Arc<Self>,
        head: Head,
        keep_text: bool,
    ) -> Result<LeanStream, ProviderError> {
        let mut body = Body {
            client: self.clone(),
            sock: Some(head.sock),
            framing: head.framing,
            keep_alive: head.keep_alive,
            raw: head.rest,
            // Sized once: an answer's bytes would otherwise regrow it chunk by chunk.
            out: Vec::with_capacity(READ_MIN),
        };
        if (200..300).contains(&head.status) {
            return Ok(LeanStream {
                body,
                scan: Scanner::new(keep_text),
                events: Vec::new(),
                queue: VecDeque::new(),
                end: None,
                scanned: 0,
                read_at: Instant::now(),
            });
        }
        // An error answer: its body (bounded, at most 5 s) says why.
        let mut text = Vec::new();
        let read = async {
            while text.len() < crate::provider::body::MAX_ERROR_BODY_BYTES {
                match body.read().await {
                    Ok(true) => text.extend_from_slice(&body.out),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        text.truncate(crate::provider::body::MAX_ERROR_BODY_BYTES);
        Err(classify_http(
            head.status,
            &String::from_utf8_lossy(&text),
            head.retry_after,
        ))
    }
}

enum Exchange {
    /// The connection was closed before any byte of an answer: safe to send again.
    Closed,
    Failed(ProviderError),
}

struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    retry_after: Option<Duration>,
    sock: TcpStream,
    /// Bytes read past the head: the body's start.
    rest: Vec<u8>,
}

impl Head {
    fn read(r: &httparse::Response, sock: TcpStream, rest: Vec<u8>) -> Result<Head, String> {
        let status = r.code.unwrap_or(0);
        let mut framing = Framing::until_close();
        let mut keep_alive = r.version == Some(1);
        let mut map = reqwest::header::HeaderMap::new();
        for h in r.headers.iter() {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if v.to_ascii_lowercase().ends_with("chunked") {
                    framing = Framing::chunked();
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                if framing == Framing::until_close() {
                    framing = Framing::length(
                        v.parse()
                            .map_err(|_| format!("content-length `{v}` is not a number"))?,
                    );
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                keep_alive &= !v.eq_ignore_ascii_case("close");
            } else if h.name.to_ascii_lowercase().starts_with("retry-after") {
                if let (Ok(n), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(h.name.as_bytes()),
                    reqwest::header::HeaderValue::from_bytes(h.value),
                ) {
                    map.insert(n, v);
                }
            }
        }
        // 204 and 304 have no body whatever the headers say.
        if status == 204 || status == 304 {
            framing = Framing::length(0);
        }
        keep_alive &= !framing.ends_at_close();
        Ok(Head {
            status,
            framing,
            keep_alive,
            retry_after: crate::provider::error::parse_retry_after(&map),
            sock,
            rest,
        })
    }
}

fn request_bytes(req: &RawSseRequest) -> Vec<u8> {
    use std::io::Write;
    let mut w = Vec::with_capacity(req.body.len() + 256);
    let _ = write!(
        w,
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\ncontent-length: {}\r\n",
        req.path,
        req.authority,
        req.body.len()
    );
    if let Some(k) = &req.api_key {
        let _ = write!(w, "authorization: Bearer {}\r\n", k.expose());
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(&req.body);
    w
}

/// One answer's events as they arrive, each with the time its bytes were read.
pub struct LeanStream {
    body: Body,
    scan: Scanner,
    events: Vec<LeanEvent>,
    queue: VecDeque<(LeanEvent, Instant)>,
    end: Option<Result<(), ProviderError>>,
    /// How much of the body's last read has been scanned, and when it was read.
    scanned: usize,
    read_at: Instant,
}

impl LeanStream {
    /// The answer as the provider layer's events (text and finish reason kept). Polled in
    /// place: nothing of the stream's state moves per event.
    pub fn into_events(mut self) -> crate::provider::EventStream {
        use crate::provider::StreamEvent;
        Box::pin(futures::stream::poll_fn(move |cx| {
            self.poll_next(cx).map(|got| {
                got.map(|r| {
                    r.map(|(ev, at)| match ev {
                        LeanEvent::Delta {
                            text,
                            finish_reason,
                            ..
                        } => StreamEvent::Delta {
                            text: text.unwrap_or_default(),
                            at,
                            finish_reason,
                        },
                        LeanEvent::Usage(usage) => StreamEvent::Usage {
                            usage,
                            server: None,
                            at,
                        },
                    })
                })
            })
        }))
    }

    /// The next event; `None` after `[DONE]`; an error once, then `None`.
    pub async fn next(&mut self) -> Option<Result<(LeanEvent, Instant), ProviderError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Events are read out of what the socket gave one at a time, so that the first of a
    /// burst is handed on (a gateway writes it to its client) before the rest are parsed.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(LeanEvent, Instant), ProviderError>>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Poll::Ready(Some(Ok(ev)));
            }
            match self.end.take() {
                Some(Ok(())) => {
                    self.end = Some(Ok(()));
                    return Poll::Ready(None);
                }
                Some(Err(e)) => {
                    self.end = Some(Ok(()));
                    return Poll::Ready(Some(Err(e)));
                }
                None => {}
            }
            if self.scanned < self.body.out.len() {
                self.scan_one();
                continue;
            }
            match ready!(self.body.poll_read(cx)) {
                Ok(true) => {
                    self.scanned = 0;
                    self.read_at = Instant::now();
                }
                Ok(false) => self.end = Some(Err(self.scan.truncated())),
                Err(e) => self.end = Some(Err(e)),
            }
        }
    }

    /// Scans the unscanned bytes up to the end of the next event (a blank line).
    fn scan_one(&mut self) {
        let rest = &self.body.out[self.scanned..];
        let cut = event_end(rest).unwrap_or(rest.len());
        let end = self.scan.push(&rest[..cut], &mut self.events);
        self.scanned += cut;
        let at = self.read_at;
        self.queue.extend(self.events.drain(..).map(|ev| (ev, at)));
        match end {
            Some(End::Done) => {
                self.end = Some(Ok(()));
                self.body.finish();
            }
            Some(End::Error(e)) => {
                self.end = Some(Err(e));
                self.body.sock = None;
            }
            None => {}
        }
    }
}

/// Where the first event in `bytes` ends: just past its blank line (`\n\n` or `\n\r\n`).
/// Looks no further than that line, so that reading a burst of events costs its length
/// once, not once per event.
fn event_end(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', bytes).find_map(|i| match bytes.get(i + 1..) {
        Some([b'\n', ..]) => Some(i + 2),
        Some([b'\r', b'\n', ..]) => Some(i + 3),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::event_end;

    #[test]
    fn an_event_ends_at_its_blank_line_whatever_its_line_ends() {
        assert_eq!(event_end(b"data: a\n\ndata: b\n\n"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\ndata: b"), Some(11));
        assert_eq!(event_end(b"data: a\ndata: b\n\n"), Some(17));
        assert_eq!(event_end(b"data: a\n"), None);
        assert_eq!(event_end(b"data: a\n\r"), None);
        assert_eq!(event_end(b""), None);
    }
}
