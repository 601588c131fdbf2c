//! A response body read off its connection: raw reads as the socket gives them, the
//! framing undone, and the connection handed back to its pool once the body has ended.
use super::framing::Framing;
use super::{LeanClient, READ_BUF, READ_MIN};
use crate::provider::error::{ErrorClass, ProviderError};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Appends what the socket has to `buf` (its spare room), or waits until it has something.
fn poll_read_buf(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    loop {
        match sock.try_read_buf(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                ready!(sock.poll_read_ready(cx))?;
            }
            got => return Poll::Ready(got),
        }
    }
}

/// A response body being read off its connection.
pub(super) struct Body {
    pub(super) client: std::sync::Arc<LeanClient>,
    pub(super) sock: Option<TcpStream>,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    /// Raw bytes read but not yet unframed.
    pub(super) raw: Vec<u8>,
    /// The body's bytes from the last [`Body::read`].
    pub(super) out: Vec<u8>,
}

impl Body {
    /// Reads the next body bytes into `out`; false at the body's end.
    pub(super) async fn read(&mut self) -> Result<bool, ProviderError> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// [`Body::read`], polled: `out` is empty whenever this is pending.
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ProviderError>> {
        self.out.clear();
        loop {
            if !self.raw.is_empty() {
                let used = match self.framing.decode(&self.raw, &mut self.out) {
                    Ok(used) => used,
                    Err(e) => return Poll::Ready(Err(self.client.broken(&e))),
                };
                self.raw.drain(..used);
                if !self.out.is_empty() {
                    return Poll::Ready(Ok(true));
                }
            }
            if self.framing.done() {
                return Poll::Ready(Ok(false));
            }
            let Some(sock) = self.sock.as_mut() else {
                return Poll::Ready(Ok(false));
            };
            let grow = if self.raw.capacity() >= READ_BUF {
                READ_BUF
            } else {
                READ_MIN
            };
            self.raw.reserve(grow);
            let room = self.raw.capacity() - self.raw.len();
            let got = ready!(poll_read_buf(sock, &mut self.raw, cx));
            if matches!(got, Ok(n) if n == room) {
                self.raw.reserve(READ_BUF);
            }
            match got {
                Ok(0) => {
                    self.sock = None;
                    if self.framing.ends_at_close() {
                        return Poll::Ready(Ok(false));
                    }
                    return Poll::Ready(Err(ProviderError::new(
                        ErrorClass::StreamBroken,
                        format!(
                            "{} closed the connection before the body's end",
                            self.client.authority
                        ),
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.sock = None;
                    return Poll::Ready(Err(ProviderError::new(
                        ErrorClass::StreamBroken,
                        format!("reading the stream of {}: {e}", self.client.authority),
                    )));
                }
            }
        }
    }

    /// After `[DONE]`: the connection goes back to the pool once its body is read to the end;
    /// the rest (the last chunk's framing) is read in the background so that the answer's
    /// end is not delayed by it.
    pub(super) fn finish(&mut self) {
        let Some(sock) = self.sock.take() else { return };
        if !self.keep_alive {
            return;
        }
        // Usually the last chunk's framing came with `[DONE]`.
        self.out.clear();
        if let Ok(used) = self.framing.decode(&self.raw, &mut self.out) {
            self.raw.drain(..used);
            if self.framing.done() {
                if self.raw.is_empty() && self.out.is_empty() {
                    self.client.give_back(sock);
                }
                return;
            }
        }
        let mut rest = Body {
            client: self.client.clone(),
            sock: Some(sock),
            framing: self.framing.clone(),
            keep_alive: true,
            raw: std::mem::take(&mut self.raw),
            out: Vec::new(),
        };
        let drain = async move {
            loop {
                match rest.read().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => return,
                }
            }
            if rest.framing.done() && rest.raw.is_empty() {
                if let Some(s) = rest.sock.take() {
                    rest.client.give_back(s);
                }
            }
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        });
    }
}
