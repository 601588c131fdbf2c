//! A listener that can stop listening: while "refusing", the socket is closed, so clients get
//! a real connection refused (what a loading vLLM looks like), then it binds the port again.
//! Connections already open are closed too, as a server that went away would close them;
//! otherwise a client's pooled keep-alive connections would keep answering.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// An accepted connection that ends (EOF to the server, which then closes it) as soon as the
/// simulator starts refusing.
pub struct GatedStream {
    inner: TcpStream,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    gone: bool,
}

impl GatedStream {
    fn new(inner: TcpStream, mut refusing: watch::Receiver<bool>) -> Self {
        let closed = Box::pin(async move {
            loop {
                if *refusing.borrow_and_update() {
                    return;
                }
                if refusing.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        });
        Self {
            inner,
            closed,
            gone: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.gone && self.closed.as_mut().poll(cx).is_ready() {
            self.gone = true;
        }
        self.gone
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.check(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.check(cx) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub struct GatedListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    refusing: watch::Receiver<bool>,
}

impl GatedListener {
    pub fn new(l: TcpListener, refusing: watch::Receiver<bool>) -> std::io::Result<Self> {
        let addr = l.local_addr()?;
        let inner = if *refusing.borrow() { None } else { Some(l) };
        Ok(Self {
            inner,
            addr,
            refusing,
        })
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedStream, SocketAddr) {
        loop {
            if *self.refusing.borrow_and_update() {
                self.inner = None;
                if self.refusing.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            if self.inner.is_none() {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => self.inner = Some(l),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let Some(l) = self.inner.as_ref() else {
                continue;
            };
            tokio::select! {
                r = l.accept() => match r {
                    Ok((s, a)) => {
                        let _ = s.set_nodelay(true);
                        return (GatedStream::new(s, self.refusing.clone()), a);
                    }
                    // Out of descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                _ = self.refusing.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
