//! The listener: workers on threads of their own, one connection task each (HTTP/1.1, with a
//! deadline for the request head against slow clients), the per-second tick of the feed, and
//! a graceful stop: no new connections, in-flight answers may finish up to the drain
//! timeout, then end in-band.
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
    /// One per worker, resolved when its connections are all closed.
    workers: Vec<tokio::sync::oneshot::Receiver<()>>,
}

/// How many workers serve: one per core. Each runs a runtime of its own on its own thread
/// and serves its connections there from start to end, upstream connections included (a
/// pool of its own), so that a request is never handed between threads: on a loaded
/// machine each hand-over is a wake-up of another thread that costs more than the relay's
/// own work. The listening socket is shared; an idle worker tends to take the next
/// connection.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

/// Binds and serves; returns once the socket listens.
pub async fn run(settings: Settings, live: Live) -> Result<Running, String> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = listener.into_std().map_err(|e| e.to_string())?;
    let shared = Shared::new(settings, live);
    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    for i in 0..worker_count() {
        let l = listener
            .try_clone()
            .map_err(|e| format!("cannot share the socket on {addr}: {e}"))?;
        let (done, finished) = tokio::sync::oneshot::channel();
        let (shared, stopped) = (shared.clone(), stopped.clone());
        std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || worker(i, l, shared, stopped, done))
            .map_err(|e| format!("cannot start a gateway worker: {e}"))?;
        workers.push(finished);
    }
    tokio::spawn(tick(Arc::downgrade(&shared)));
    Ok(Running {
        addr,
        shared,
        stop,
        workers,
    })
}

/// One worker's thread: its runtime, its share of the connections.
fn worker(
    i: usize,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            shared.notice(format!("gateway worker {i} could not start: {e}"));
            return;
        }
    };
    crate::provider::lean::use_own_pool(i as u64 + 1);
    rt.block_on(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => serve(l, shared, stop).await,
            Err(e) => shared.notice(format!("gateway worker {i} could not listen: {e}")),
        }
    });
    let _ = done.send(());
}

impl Running {
    /// Stops accepting, lets answers in flight finish up to the drain timeout, ends the rest
    /// with an in-band error, and returns when every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let shared = self.shared;
        let drain = shared.settings.drain_timeout;
        let n = shared.admission.in_flight();
        shared.notice(format!(
            "draining: no new connections; {n} request(s) in flight may finish within {:.0} s",
            drain.as_secs_f64()
        ));
        shared.begin_drain();
        let closed = futures::future::join_all(self.workers);
        tokio::pin!(closed);
        if tokio::time::timeout(drain, &mut closed).await.is_err() {
            let left = shared.admission.in_flight();
            shared.notice(format!(
                "drain timeout: ending {left} answer(s) still in flight with an error"
            ));
            shared.cut_streams();
            // Each cut stream writes its error and ends; connections close after that.
            let _ = tokio::time::timeout(CUT_GRACE, closed).await;
        }
    }
}

/// How long cut streams have to write their error and close.
const CUT_GRACE: Duration = Duration::from_secs(5);

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

/// A worker's connections: accepted until the stop, then closed gracefully (the drain and
/// its cut are the coordinator's, in [`Running::shutdown`]).
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
            // Stopped, or the gateway dropped without a shutdown.
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
    // The coordinator cuts what is left after the drain timeout; this bound only keeps a
    // worker from outliving a connection that ignores even that.
    let most = shared.settings.drain_timeout + CUT_GRACE + Duration::from_secs(1);
    let _ = tokio::time::timeout(most, graceful.shutdown()).await;
}
