//! A listener that can stop listening: while "refusing", the socket is closed, so clients get
//! a real connection refused (what a loading vLLM looks like), then it binds the port again.
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
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
                        return (s, a);
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
