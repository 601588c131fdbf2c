//! The console binary on a pseudo-terminal, read back through a VT100 parser: keys in,
//! the screen's text out.
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Polls `text` until it holds `what`; `secs` only keeps a broken run from hanging.
pub fn wait_for_text(what: &str, secs: u64, text: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = text();
        if now.contains(what) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{what}` on the screen after {secs} s:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Console {
    screen: Arc<Mutex<vt100::Parser>>,
    keys: Box<dyn Write + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    // Kept open: dropping the master hangs the console up.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Console {
    pub fn spawn(
        args: &[&str],
        cwd: &std::path::Path,
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
    ) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_anorag-tui"));
        cmd.args(args);
        cmd.cwd(cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let sink = screen.clone();
        super::pump(pair.master.try_clone_reader().unwrap(), move |b| {
            sink.lock().unwrap().process(b)
        });
        let keys = pair.master.take_writer().unwrap();
        Console {
            screen,
            keys,
            child,
            _master: pair.master,
        }
    }

    pub fn text(&self) -> String {
        self.screen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .screen()
            .contents()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.keys.write_all(bytes).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits for `what` on the screen; `secs` only keeps a broken run from hanging.
    pub fn wait_for(&self, what: &str, secs: u64) {
        wait_for_text(what, secs, || self.text());
    }

    /// The exit status once the console ends.
    pub fn wait_exit(&mut self, secs: u64) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the console did not exit:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
