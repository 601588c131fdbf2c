//! Watching several gateways at once for a screen: one follower per gateway applies its
//! feed to that gateway's view, and a publisher hands a copy of all views on at most every
//! `every`, only when something changed (a screen redraws a few times a second however
//! many thousands of events arrive).
use super::model::GatewayView;
use super::reader::{follow, Update, Want};
use crate::config::{Config, ServerKind};
use crate::secret::Secret;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The gateways a config names: its own gateway's address and its gateway profiles'.
pub fn gateways_of(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(s) = crate::gateway::Settings::from_config(cfg, None) {
        out.push(loopback_for(&s.listen.ip().to_string(), s.listen.port()));
    }
    for p in cfg.servers.values() {
        if p.kind == ServerKind::Gateway {
            let a = loopback_for(p.host.as_deref().unwrap_or("127.0.0.1"), p.port);
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The address to reach a server listening on `host`: a wildcard is reached on loopback.
fn loopback_for(host: &str, port: u16) -> String {
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    if host.contains(':') {
        format!("[{}]:{port}", host.trim_matches(['[', ']']))
    } else {
        format!("{host}:{port}")
    }
}

/// The gateways' views as last published; dropping it stops the followers.
pub struct Watcher {
    pub rx: watch::Receiver<Arc<Vec<GatewayView>>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Follows each of `addrs` and publishes their views at most every `every`.
pub fn spawn(addrs: Vec<String>, key: Option<Secret>, want: Want, every: Duration) -> Watcher {
    let views: Vec<Arc<Mutex<GatewayView>>> = addrs
        .iter()
        .map(|a| Arc::new(Mutex::new(GatewayView::new(a))))
        .collect();
    let version = Arc::new(AtomicU64::new(0));
    let (tx, rx) = watch::channel(Arc::new(
        views.iter().map(|v| lock(v).clone()).collect::<Vec<_>>(),
    ));
    let mut tasks = Vec::new();
    for (addr, view) in addrs.into_iter().zip(&views) {
        let (view, key, version) = (view.clone(), key.clone(), version.clone());
        let t = tokio::spawn(async move {
            follow(&addr, key, want, |u| {
                let mut v = lock(&view);
                match u {
                    Update::Up => v.connected(),
                    Update::Down(why) => v.disconnected(&why),
                    Update::Event(e) => v.apply(e),
                }
                version.fetch_add(1, Ordering::Relaxed);
                true
            })
            .await
        });
        tasks.push(t.abort_handle());
    }
    let publisher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0;
        loop {
            tick.tick().await;
            let now = version.load(Ordering::Relaxed);
            if now == sent {
                continue;
            }
            sent = now;
            let all: Vec<GatewayView> = views.iter().map(|v| lock(v).clone()).collect();
            if tx.send(Arc::new(all)).is_err() {
                return;
            }
        }
    });
    tasks.push(publisher.abort_handle());
    Watcher { rx, tasks }
}

fn lock(v: &Mutex<GatewayView>) -> std::sync::MutexGuard<'_, GatewayView> {
    v.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_reached_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0", 8090), "127.0.0.1:8090");
        assert_eq!(loopback_for("::", 8090), "[::1]:8090");
        assert_eq!(loopback_for("10.0.0.2", 1), "10.0.0.2:1");
        assert_eq!(loopback_for("fe80::1", 2), "[fe80::1]:2");
    }
}
