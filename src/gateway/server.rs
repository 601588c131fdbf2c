//! The listener: one connection task each (HTTP/1.1, with a deadline for the request head
//! against slow clients), the per-second tick of the feed, and a graceful stop: no new
//! connections, in-flight answers may finish up to the drain timeout, then end in-band.
use super::{http, Live, Settings, Shared};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceExt;

/// A gateway serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Binds and serves; returns once the socket listens.
pub async fn run(settings: Settings, live: Live) -> Result<Running, String> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let shared = Shared::new(settings, live);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, shared.clone(), stopped));
    tokio::spawn(tick(Arc::downgrade(&shared)));
    Ok(Running {
        addr,
        shared,
        stop,
        task,
    })
}

impl Running {
    /// Stops accepting, lets answers in flight finish up to the drain timeout, ends the rest
    /// with an in-band error, and returns when every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Closes each second of the feed on the wall clock's second.
async fn tick(shared: std::sync::Weak<Shared>) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let to_next = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
        tokio::time::sleep(to_next).await;
        let Some(sh) = shared.upgrade() else { return };
        sh.feed.tick(
            now.as_secs(),
            sh.admission.in_flight(),
            sh.admission.queued(),
            sh.circuit_seconds(),
        );
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let app = http::router(shared.clone());
    let graceful = GracefulShutdown::new();
    let head_timeout = shared.settings.client_timeout;
    loop {
        let (sock, peer) = tokio::select! {
            acc = listener.accept() => match acc {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::until_true(&mut stop) => break,
        };
        let _ = sock.set_nodelay(true);
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer);
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .serve_connection(TokioIo::new(sock), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let drain = shared.settings.drain_timeout;
    let n = shared.admission.in_flight();
    shared.notice(format!(
        "draining: no new connections; {n} request(s) in flight may finish within {:.0} s",
        drain.as_secs_f64()
    ));
    shared.begin_drain();
    let closing = graceful.shutdown();
    tokio::pin!(closing);
    if tokio::time::timeout(drain, &mut closing).await.is_err() {
        let left = shared.admission.in_flight();
        shared.notice(format!(
            "drain timeout: ending {left} answer(s) still in flight with an error"
        ));
        shared.cut_streams();
        // Each cut stream writes its error and ends; connections close after that.
        let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    }
}
