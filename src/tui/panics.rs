//! Panics while the console runs. One on the UI thread ends the console: the terminal is put
//! back first, so the message can be read. One in a background task (an engine: chat, bench,
//! supervisor, telemetry) must not touch the terminal under a running UI: it goes to our log
//! and to the console, which says so and keeps running.
use std::sync::{Mutex, Once, OnceLock};
use std::thread::ThreadId;
use tokio::sync::mpsc;

static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
static SINK: Mutex<Option<mpsc::UnboundedSender<String>>> = Mutex::new(None);
static HOOK: Once = Once::new();
static RESTORE: OnceLock<fn()> = OnceLock::new();

/// Installs the hook; the calling thread is the UI's. Reports from other threads go to `tx`;
/// a panic on the UI thread calls `restore` (the terminal's) before the message.
pub fn install(tx: mpsc::UnboundedSender<String>, restore: fn()) {
    let _ = UI_THREAD.set(std::thread::current().id());
    let _ = RESTORE.set(restore);
    if let Ok(mut s) = SINK.lock() {
        *s = Some(tx);
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_ui = UI_THREAD.get() == Some(&std::thread::current().id());
            if !on_ui && report(&describe(info)) {
                return;
            }
            if let Some(restore) = RESTORE.get() {
                restore();
            }
            previous(info);
        }));
    });
}

/// The UI thread: a panic there ends the console, terminal first. Also for tests.
pub fn is_ui_thread() -> bool {
    UI_THREAD.get() == Some(&std::thread::current().id())
}

fn describe(info: &std::panic::PanicHookInfo<'_>) -> String {
    let what = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    format!("{what}{at} (thread {})", thread.name().unwrap_or("unnamed"))
}

/// False when nobody listens any more (the console is gone): then the default applies.
fn report(msg: &str) -> bool {
    tracing::error!("panic in a background task: {msg}");
    SINK.lock()
        .ok()
        .and_then(|s| s.as_ref().map(|tx| tx.send(msg.to_string()).is_ok()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RESTORES: AtomicUsize = AtomicUsize::new(0);

    fn counted() {
        RESTORES.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_background_panic_is_reported_and_leaves_the_terminal_alone() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        install(tx, counted);
        let restores = RESTORES.load(Ordering::Relaxed);
        let t = std::thread::Builder::new()
            .name("engine".into())
            .spawn(|| panic!("boom"))
            .unwrap();
        assert!(t.join().is_err());
        let msg = rx.try_recv().expect("reported");
        assert!(
            msg.starts_with("boom at src/tui/panics.rs:") && msg.ends_with("(thread engine)"),
            "{msg}"
        );
        assert_eq!(
            RESTORES.load(Ordering::Relaxed),
            restores,
            "terminal untouched"
        );
        assert!(is_ui_thread());
    }
}
