//! The console in a real terminal: the binary on a pseudo-terminal, read back through a VT100
//! parser. It starts on a test config whose demo server autostarts, switches panes, chats,
//! quits with `q` (stopping the server it started) and leaves the terminal as it found it.
use crate::common;

use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COLS: u16 = 110;
const ROWS: u16 = 32;

struct Screen {
    parser: vt100::Parser,
    raw: Vec<u8>,
}

/// Stops what the console started if the test fails half-way: a dropped pty hangs the console
/// up, and a hung-up console leaves its servers running on purpose.
struct StopOnDrop {
    cfg: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
            .arg("--config")
            .arg(&self.cfg)
            .args(["server", "stop", "demo"])
            .env("ANORAG_STATE_DIR", &self.state)
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn contents(s: &Arc<Mutex<Screen>>) -> String {
    s.lock().unwrap().parser.screen().contents()
}

fn wait_for(s: &Arc<Mutex<Screen>>, what: &str, secs: u64) {
    common::console::wait_for_text(what, secs, || contents(s));
}

fn termios(fd: i32) -> libc::termios {
    // SAFETY: a zeroed termios is a valid out-parameter, and `fd` is the open pty master.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0, "tcgetattr on the pty");
        t
    }
}

fn cooked(t: &libc::termios) -> bool {
    t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
}

#[test]
fn console_in_a_real_terminal_switches_panes_chats_quits_and_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("dashboard.yaml");
    std::fs::write(
        &cfg,
        format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      \
             demo: {{base_url: http://127.0.0.1:{port}/v1, model: demo}}\n    \
             default_route: demo\n  builtin: {{model: anorag-sim}}\n\
             servers:\n  demo:\n    kind: sim\n    port: {port}\n    route: demo\n    \
             autostart: true\n    extra_args: [--ttft-ms, \"30\", --itl-ms, \"5\", --tokens, \"24\"]\n"
        ),
    )
    .unwrap();

    let _cleanup = StopOnDrop {
        cfg: cfg.clone(),
        state: dir.path().join("state"),
    };

    let pty = native_pty_system();
    let pair = pty
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let fd = pair.master.as_raw_fd().expect("a unix pty");
    assert!(cooked(&termios(fd)), "a fresh pty starts cooked");

    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_anorag-tui"));
    cmd.arg("--config");
    cmd.arg(&cfg);
    cmd.cwd(dir.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env("ANORAG_STATE_DIR", dir.path().join("state"));
    cmd.env_remove("RUST_LOG");
    let mut child = pair.slave.spawn_command(cmd).unwrap();

    let screen = Arc::new(Mutex::new(Screen {
        parser: vt100::Parser::new(ROWS, COLS, 0),
        raw: Vec::new(),
    }));
    let sink = screen.clone();
    common::pump(pair.master.try_clone_reader().unwrap(), move |bytes| {
        let mut s = sink.lock().unwrap();
        s.parser.process(bytes);
        s.raw.extend_from_slice(bytes);
    });
    let mut keys = pair.master.take_writer().unwrap();
    let mut send = |bytes: &[u8]| {
        keys.write_all(bytes).unwrap();
        keys.flush().unwrap();
    };

    // The header, the tabs, then the autostarted demo server coming up.
    wait_for(&screen, "anorag-tui", 20);
    wait_for(&screen, "1 Servers", 5);
    {
        let s = screen.lock().unwrap();
        assert!(
            s.parser.screen().alternate_screen(),
            "runs on the alternate screen"
        );
    }
    assert!(!cooked(&termios(fd)), "raw mode while the console runs");
    wait_for(&screen, "ready", 30);

    // Panes by number key and by the command line.
    send(b"2");
    wait_for(&screen, "GPU ·", 5);
    send(b":routes\r");
    wait_for(&screen, "Routes ·", 5);
    wait_for(&screen, "2/2 up", 15);

    // A chat to the demo server streams in; the footer names who served it.
    send(b"4");
    wait_for(&screen, "Chat ·", 5);
    send(b"i");
    send(b"hello from a pty");
    send(b"\r");
    wait_for(&screen, "hello from a pty", 5);
    wait_for(&screen, "served by demo", 15);
    wait_for(&screen, "Chat · 1 turn", 15);
    send(b"\x1b");
    // A lone ESC then a key at once would read as Alt+key, as in any terminal.
    std::thread::sleep(Duration::from_millis(300));
    wait_for(&screen, "Message · i to type", 5);

    // `q` asks about the server started here; `y` stops it and quits.
    send(b"q");
    wait_for(&screen, "Quit", 5);
    send(b"y");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the console did not exit:\n{}",
            contents(&screen)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    // Let the reader drain what the console wrote last.
    std::thread::sleep(Duration::from_millis(200));

    let s = screen.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        !s.parser.screen().alternate_screen(),
        "back on the main screen"
    );
    assert!(!s.parser.screen().hide_cursor(), "the cursor is shown");
    let raw = String::from_utf8_lossy(&s.raw);
    let entered = raw
        .rfind("\x1b[?1049h")
        .expect("entered the alternate screen");
    let left = raw.rfind("\x1b[?1049l").expect("left the alternate screen");
    assert!(left > entered);
    assert!(cooked(&termios(fd)), "cooked mode (ICANON, ECHO) restored");

    // The server this console started is stopped, not orphaned.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args(["--config"])
        .arg(&cfg)
        .args(["server", "status", "demo", "--json"])
        .env("ANORAG_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "exited", "stopped on request: {status}");
    let pid = status["pid"].as_i64().expect("the last run's pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "demo server {pid} still runs"
    );
}
