//! The console without a terminal: `update` on its own, and every pane drawn on ratatui's
//! TestBackend in its key states (insta snapshots of the text).
use anorag::bench::recorder::Stats;
use anorag::bench::result::{BenchResult, Series};
use anorag::bench::{Control, Phase, Progress};
use anorag::provider::router::{Attempt, ServedBy};
use anorag::provider::{ErrorClass, ProviderKind, Usage};
use anorag::session::{AnswerMeta, ChatEvent};
use anorag::supervisor::engine::{Op, SupEvent};
use anorag::supervisor::{ServerStatus, State};
use anorag::telemetry::gpu::fake::FakeGpuSource;
use anorag::telemetry::gpu::{GpuSample, GpuStatus};
use anorag::telemetry::host::{HostSample, ServerUsage};
use anorag::telemetry::sampler::{GpuView, HostView};
use anorag::tui::action::{Action, Effect};
use anorag::tui::app::{App, Overlay, Pane, Typing};
use anorag::tui::keymap::KeyMap;
use anorag::tui::update::update;
use anorag::tui::view;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const NOW: f64 = 1_795_600_000.0;

pub(crate) fn app() -> App {
    let routes = ["tiny_qwen", "demo", "builtin"].map(String::from).to_vec();
    let mut a = App::new(KeyMap::defaults(), routes, "tiny_qwen", false, 1000);
    a.now = NOW;
    a.config_name = "dashboard.yaml".into();
    a
}

pub(crate) fn key(a: &mut App, c: KeyCode) -> Vec<Effect> {
    update(a, Action::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

pub(crate) fn ch(a: &mut App, c: char) -> Vec<Effect> {
    let m = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    update(a, Action::Key(KeyEvent::new(KeyCode::Char(c), m)))
}

pub(crate) fn typed(a: &mut App, s: &str) {
    for c in s.chars() {
        ch(a, c);
    }
}

fn server(name: &str, state: State) -> ServerStatus {
    let running = state.is_running();
    ServerStatus {
        name: name.into(),
        state,
        kind: if name == "demo" {
            "sim".into()
        } else {
            "vllm".into()
        },
        pid: running
            .then_some(4242)
            .or((state == State::Crashed).then_some(4242)),
        pgid: running.then_some(4242),
        host: "127.0.0.1".into(),
        port: if name == "demo" { 8010 } else { 8001 },
        started_at: running.then(|| "2026-11-25T10:00:00Z".into()),
        uptime_s: running.then_some(125.0),
        ready_after_s: (state == State::Ready).then_some(41.7),
        exit_code: None,
        signal: (state == State::Crashed).then_some(9),
        log_path: format!("/var/lib/anorag/servers/{name}/server.log"),
        route: Some(if name == "demo" {
            "demo".into()
        } else {
            "tiny_qwen".into()
        }),
        model: Some("qwen2_5_0_5b".into()),
        argv: vec![
            "vllm".into(),
            "serve".into(),
            "Qwen/Qwen2.5-0.5B-Instruct".into(),
            "--port".into(),
            "8001".into(),
        ],
        restarts: 0,
        message: None,
        failure: (state == State::Crashed).then(|| "KV cache too small: one request of max_model_len 2000000 needs 1.91 GiB, 1.0 GiB is available; set --max-model-len 1048448 (the longest that fits) or raise --gpu-memory-utilization".into()),
        fit_warning: (state == State::Crashed).then(|| "does not fit: one sequence of 2,000,000 tokens needs 1.91 GiB of KV cache, 1.00 GiB is left; the longest that fits is 1,048,448; try --max-model-len 1048448".into()),
        configured: true,
        autostart: name == "demo",
        started_unix: running.then_some(NOW - 125.0),
        run_id: Some("r1".into()),
        cluster: None,
        node: None,
        job: None,
    }
}

fn status(a: &mut App, s: ServerStatus) -> Vec<Effect> {
    update(a, Action::Sup(SupEvent::Status(Box::new(s))))
}

/// The screen as text, with the wall clock (local time) masked.
pub(crate) fn screen(a: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::render(f, a)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut lines: Vec<String> = (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect();
    // The clock is the last word of the header: `HH:MM`.
    let first = &mut lines[0];
    let trimmed = first.trim_end().len();
    if trimmed >= 5 && first[..trimmed].ends_with(|c: char| c.is_ascii_digit()) {
        first.replace_range(trimmed - 5..trimmed, "HH:MM");
    }
    lines.join("\n")
}

fn host() -> Action {
    Action::Host(Box::new(HostView {
        sample: HostSample {
            cpu_pct: 12.0,
            cores: 2,
            memory_used_bytes: 3 << 30,
            memory_total_bytes: 24 << 30,
            load_1m: 0.4,
            servers: vec![ServerUsage {
                name: "tiny".into(),
                processes: 4,
                cpu_pct: 85.0,
                rss_bytes: 3 << 30,
            }],
        },
        ..HostView::default()
    }))
}

fn no_gpu() -> Action {
    Action::Gpu(Box::new(GpuView {
        samples: vec![GpuSample::empty("local", GpuStatus::NoLibrary)],
        ..GpuView::default()
    }))
}

// ---- update, without a terminal ----

#[test]
fn panes_switch_by_number_tab_command_and_back() {
    let mut a = app();
    ch(&mut a, '3');
    assert_eq!(a.pane, Pane::Routes);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.pane, Pane::Chat);
    ch(&mut a, ':');
    typed(&mut a, "bench");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.pane, Pane::Bench);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.pane, Pane::Chat, "esc goes back");
    ch(&mut a, ':');
    typed(&mut a, "nonsense");
    key(&mut a, KeyCode::Enter);
    assert!(a
        .notice
        .as_ref()
        .unwrap()
        .text
        .contains("unknown command `:nonsense`"));
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.pane, Pane::Routes);
}

#[test]
fn servers_start_stop_with_confirmation_and_read_only() {
    let mut a = app();
    status(&mut a, server("tiny", State::Stopped));
    assert_eq!(
        ch(&mut a, 's'),
        vec![Effect::Server(Op::Start, "tiny".into())]
    );
    assert!(a.servers.started_here.contains("tiny"));
    assert!(
        ch(&mut a, 's').is_empty(),
        "no second start while the first runs"
    );
    update(
        &mut a,
        Action::Sup(SupEvent::Done {
            name: "tiny".into(),
            op: Op::Start,
            result: Ok("started (pid 1)".into()),
        }),
    );
    status(&mut a, server("tiny", State::Ready));
    assert!(ch(&mut a, 'x').is_empty(), "stopping asks first");
    assert_eq!(a.overlay, Overlay::ConfirmStop("tiny".into()));
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    ch(&mut a, 'x');
    assert_eq!(
        ch(&mut a, 'y'),
        vec![Effect::Server(Op::Stop, "tiny".into())]
    );
    let mut ro = app();
    ro.read_only = true;
    status(&mut ro, server("tiny", State::Stopped));
    assert!(ch(&mut ro, 's').is_empty());
    assert!(ro.notice.as_ref().unwrap().text.contains("read-only"));
}

#[test]
fn autostart_happens_once_and_not_when_read_only_or_already_running() {
    let mut a = app();
    let fx = status(&mut a, server("demo", State::Stopped));
    assert_eq!(fx, vec![Effect::Server(Op::Start, "demo".into())]);
    assert!(
        status(&mut a, server("demo", State::Stopped)).is_empty(),
        "once"
    );
    let mut b = app();
    assert!(
        status(&mut b, server("demo", State::Ready)).is_empty(),
        "started elsewhere: left alone"
    );
    assert!(!b.servers.started_here.contains("demo"));
    let mut ro = app();
    ro.read_only = true;
    assert!(status(&mut ro, server("demo", State::Stopped)).is_empty());
}

#[test]
fn quitting_asks_about_servers_started_here() {
    let mut a = app();
    assert_eq!(
        ch(&mut a, 'q'),
        vec![Effect::Quit { stop: vec![] }],
        "nothing started here: quit at once"
    );
    let mut a = app();
    status(&mut a, server("demo", State::Stopped));
    status(&mut a, server("demo", State::Ready));
    status(&mut a, server("tiny", State::Ready));
    assert!(ch(&mut a, 'q').is_empty());
    assert_eq!(
        a.overlay,
        Overlay::Quit {
            running: vec!["demo".into()]
        },
        "tiny was started elsewhere"
    );
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.overlay, Overlay::None);
    assert!(!a.quit);
    ch(&mut a, 'q');
    assert_eq!(
        ch(&mut a, 'y'),
        vec![Effect::Quit {
            stop: vec!["demo".into()]
        }]
    );
    assert!(a.quit);
    let mut b = app();
    status(&mut b, server("demo", State::Stopped));
    status(&mut b, server("demo", State::Ready));
    ch(&mut b, 'q');
    assert_eq!(
        ch(&mut b, 'l'),
        vec![Effect::Quit { stop: vec![] }],
        "l leaves them running"
    );
    let mut c = app();
    status(&mut c, server("demo", State::Stopped));
    status(&mut c, server("demo", State::Ready));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(update(&mut c, Action::Key(ctrl_c)).is_empty());
    assert_eq!(
        update(&mut c, Action::Key(ctrl_c)),
        vec![Effect::Quit { stop: vec![] }],
        "a second ctrl-c leaves"
    );
}

fn served(route: &str) -> ServedBy {
    ServedBy {
        route: route.into(),
        kind: ProviderKind::Builtin,
        base_url: "http://127.0.0.1:9/v1".into(),
        model: "anorag-sim".into(),
    }
}

#[test]
fn chat_sends_streams_finishes_and_cancels() {
    let mut a = app();
    ch(&mut a, '4');
    ch(&mut a, 'i');
    assert_eq!(a.typing, Typing::ChatMessage);
    typed(&mut a, "hello");
    update(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT)),
    );
    typed(&mut a, "world");
    let fx = key(&mut a, KeyCode::Enter);
    let Effect::ChatSend { id, route, req } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(route, "tiny_qwen");
    assert_eq!(
        req.messages.last().unwrap().content,
        "hello\nworld",
        "alt-enter made a new line"
    );
    assert_eq!(req.max_tokens, None, "left to the route's params");
    let id = *id;
    update(
        &mut a,
        Action::Chat(ChatEvent::Started {
            id,
            served_by: served("builtin"),
            attempts: vec![],
        }),
    );
    update(
        &mut a,
        Action::Chat(ChatEvent::Delta {
            id,
            text: "Hi ".into(),
        }),
    );
    update(
        &mut a,
        Action::Chat(ChatEvent::Delta {
            id,
            text: "there".into(),
        }),
    );
    assert_eq!(a.chat.streaming.as_ref().unwrap().text, "Hi there");
    update(
        &mut a,
        Action::Chat(ChatEvent::Finished {
            id,
            meta: Box::new(AnswerMeta {
                route: "tiny_qwen".into(),
                ttft_ms: Some(40.0),
                ..AnswerMeta::default()
            }),
        }),
    );
    assert!(a.chat.streaming.is_none());
    assert_eq!(a.chat.conv.turns[0].answer, "Hi there");
    // A second question, cancelled mid-answer; its late events are ignored.
    typed(&mut a, "again");
    let fx = key(&mut a, KeyCode::Enter);
    let Effect::ChatSend { id: id2, req, .. } = &fx[0] else {
        panic!()
    };
    assert_eq!(req.messages.len(), 3, "the history goes with it");
    let id2 = *id2;
    update(
        &mut a,
        Action::Chat(ChatEvent::Delta {
            id: id2,
            text: "partial".into(),
        }),
    );
    assert_eq!(
        key(&mut a, KeyCode::Esc),
        vec![Effect::ChatCancel(id2)],
        "esc cancels the answer even from the message box"
    );
    assert_eq!(a.typing, Typing::ChatMessage, "and the box keeps the focus");
    assert!(a.chat.conv.turns[1].meta.cancelled);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.typing, Typing::None, "the next esc leaves the box");
    assert_eq!(a.pane, Pane::Chat);
    assert_eq!(a.chat.conv.turns[1].answer, "partial");
    update(
        &mut a,
        Action::Chat(ChatEvent::Delta {
            id: id2,
            text: "late".into(),
        }),
    );
    assert_eq!(a.chat.conv.turns.len(), 2);
    assert!(a.chat.streaming.is_none());
    // Saving writes Markdown.
    let fx = ch(&mut a, 'w');
    let Effect::Save { path, contents } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert!(path.to_string_lossy().ends_with(".md"));
    assert!(contents.contains("## User\n\nhello\nworld") && contents.contains("Hi there"));
}

#[test]
fn chat_settings_and_route_change() {
    let mut a = app();
    ch(&mut a, '4');
    ch(&mut a, ']');
    assert_eq!(a.chat_route(), Some("demo"));
    ch(&mut a, 'e');
    typed(&mut a, "be brief");
    key(&mut a, KeyCode::Tab);
    typed(&mut a, "0.3");
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Backspace);
    typed(&mut a, "64");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.chat.conv.system, "be brief");
    assert_eq!(a.chat.params.temperature, Some(0.3));
    assert_eq!(a.chat.params.max_tokens, Some(64));
    ch(&mut a, 'e');
    key(&mut a, KeyCode::Tab);
    typed(&mut a, "x");
    key(&mut a, KeyCode::Tab);
    assert!(
        a.notice.as_ref().unwrap().error,
        "an invalid temperature is refused"
    );
}

pub(crate) fn progress(completed: u64) -> Progress {
    let mut s = Series::default();
    for i in 0..6 {
        s.completed.push(5);
        s.sent.push(5 + i);
        s.failed.push(u32::from(i == 3));
        s.output_tokens_per_s.push(320.0 + 10.0 * i as f64);
        s.concurrency.push(8.0);
        s.ttft_p50_ms.push(Some(60.0 + i as f64));
        s.ttft_p99_ms.push(Some(80.0 + 2.0 * i as f64));
        s.e2el_p50_ms.push(Some(1300.0));
        s.e2el_p99_ms.push(Some(1350.0));
    }
    Progress {
        phase: Phase::Running,
        elapsed_s: 6.2,
        sent: completed + 8,
        completed,
        failed: 1,
        in_flight: 8,
        planned_requests: Some(100),
        concurrency: Some(8),
        requests_per_s: 5.1,
        output_tokens_per_s: 330.0,
        ttft_p50_ms: Some(62.0),
        ttft_p99_ms: Some(88.0),
        e2el_p50_ms: Some(1310.0),
        e2el_p99_ms: Some(1352.0),
        errors: [("http_503".to_string(), 1u64)].into(),
        series: s,
        e2el_bins: (0..12)
            .map(|i| (1250.0 + 10.0 * i as f64, if i == 6 { 20 } else { 3 }))
            .collect(),
        ..Progress::default()
    }
}

pub(crate) fn result(label: &str, ttft: f64) -> BenchResult {
    let st = |m: f64| Stats {
        count: 100,
        mean: m,
        median: m,
        std: m / 10.0,
        p90: m * 1.1,
        p95: m * 1.15,
        p99: m * 1.3,
        max: m * 1.4,
    };
    BenchResult {
        label: label.into(),
        backend: "vllm".into(),
        date: "20261125-120000".into(),
        completed: 100,
        failed: 0,
        sent: 100,
        duration: 17.2,
        request_throughput: 5.81,
        output_throughput: 371.96,
        ttft: st(ttft),
        tpot: st(20.0),
        itl: st(20.0),
        e2el: st(1323.0),
        series: progress(0).series,
        ..BenchResult::default()
    }
}

#[test]
fn bench_form_run_live_control_compare_and_baseline() {
    let mut a = app();
    ch(&mut a, '5');
    ch(&mut a, 'l');
    assert_eq!(a.bench.form.route, 1, "route: demo");
    ch(&mut a, 'j');
    ch(&mut a, 'j');
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Backspace);
    typed(&mut a, "8");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.bench.form.concurrency, 8);
    for _ in 0..5 {
        ch(&mut a, 'j');
    }
    ch(&mut a, 'l');
    assert_eq!(a.bench.form.compare, Some(0), "compare with tiny_qwen");
    let fx = ch(&mut a, 'r');
    let Effect::BenchStart { id, route, plan } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(route, "demo");
    assert_eq!(plan.load, anorag::bench::Load::Closed { concurrency: 8 });
    assert_eq!(plan.stop, anorag::bench::Stop::Requests(100));
    let id = *id;
    update(&mut a, Action::BenchProgress(id, Box::new(progress(40))));
    assert_eq!(
        ch(&mut a, '+'),
        vec![Effect::BenchControl(Control::SetConcurrency(9))]
    );
    assert_eq!(
        ch(&mut a, '-'),
        vec![Effect::BenchControl(Control::SetConcurrency(7))]
    );
    // Done: the same workload then runs on the compared route.
    let fx = update(
        &mut a,
        Action::BenchDone(id, Ok(vec![result("demo", 62.0)])),
    );
    let Effect::BenchStart { id: id2, route, .. } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(route, "tiny_qwen");
    update(
        &mut a,
        Action::BenchDone(*id2, Ok(vec![result("tiny_qwen", 120.0)])),
    );
    assert!(a.bench.running.is_none());
    assert_eq!(a.bench.results.len(), 2);
    ch(&mut a, 'b');
    assert_eq!(a.bench.baseline.as_ref().unwrap().label, "demo");
    let fx = ch(&mut a, 'w');
    let Effect::Save { contents, .. } = &fx[0] else {
        panic!("{fx:?}")
    };
    let v: serde_json::Value = serde_json::from_str(contents).unwrap();
    assert_eq!(v["a"]["label"], "demo");
    assert_eq!(v["b"]["label"], "tiny_qwen");
    // ... and its HTML report beside it, made from the same document.
    let (Effect::Save { path: json, .. }, Some(Effect::Report { path, doc, .. })) =
        (&fx[0], fx.get(1))
    else {
        panic!("{fx:?}")
    };
    assert_eq!(*path, json.with_extension("html"));
    assert_eq!(
        (&doc["a"]["label"], &doc["b"]["label"]),
        (&v["a"]["label"], &v["b"]["label"])
    );
    // `:report FILE` writes the report alone; the document reads as a comparison.
    ch(&mut a, ':');
    typed(&mut a, "report out/cmp.html");
    let fx = key(&mut a, KeyCode::Enter);
    let [Effect::Report { path, name, doc }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(path.to_str(), Some("out/cmp.html"));
    let d = anorag::report::load::parse(name, (**doc).clone()).unwrap();
    assert_eq!(d.kind(), "comparison");
    let html = anorag::report::html(&[d], &anorag::report::Options::default()).unwrap();
    assert!(html.contains("<svg id=\"chart-cmp-ttft-over-time\""));
    // Esc during a run stops it.
    let fx = ch(&mut a, 'r');
    assert!(matches!(fx[0], Effect::BenchStart { .. }));
    assert!(key(&mut a, KeyCode::Esc).contains(&Effect::BenchControl(Control::Cancel)));
}

#[test]
fn log_lines_dropped_counts_filter_and_follow() {
    let mut a = app();
    status(&mut a, server("tiny", State::Ready));
    a.logs.cap = 5;
    a.logs.rings.clear();
    let lines: Vec<String> = (0..8).map(|i| format!("INFO line {i}")).collect();
    update(
        &mut a,
        Action::Sup(SupEvent::Logs {
            name: "tiny".into(),
            lines,
            lost: 3,
        }),
    );
    let ring = &a.logs.rings["tiny"];
    assert_eq!(ring.len(), 5);
    assert_eq!(
        ring.dropped(),
        3 + 3,
        "ring evictions plus lines lost in the channel"
    );
    ch(&mut a, '6');
    ch(&mut a, 'k');
    assert!(!a.logs.follow, "scrolling up stops following");
    ch(&mut a, 'G');
    assert!(a.logs.follow);
    ch(&mut a, '/');
    typed(&mut a, "line 7");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.filter(), Some("line 7"));
    let s = screen(&a, 100, 20);
    assert!(
        s.contains("INFO line 7") && !s.contains("INFO line 6"),
        "{s}"
    );
    assert!(s.contains("dropped 6"));
}

#[test]
fn remapped_keys_work_and_show_in_help() {
    let mut o = indexmap::IndexMap::new();
    o.insert("stop".to_string(), "X".to_string());
    let mut a = App::new(
        KeyMap::with_overrides(&o).unwrap(),
        vec!["r".into()],
        "r",
        false,
        100,
    );
    status(&mut a, server("tiny", State::Ready));
    assert!(ch(&mut a, 'x').is_empty());
    assert_eq!(a.overlay, Overlay::None, "x no longer stops");
    ch(&mut a, 'X');
    assert_eq!(a.overlay, Overlay::ConfirmStop("tiny".into()));
    key(&mut a, KeyCode::Esc);
    ch(&mut a, '?');
    assert!(screen(&a, 100, 30).contains("X  stop the selected server"));
}

// ---- snapshots of each pane in its key states ----

fn servers_app(states: &[(&str, State)]) -> App {
    let mut a = app();
    update(&mut a, host());
    update(&mut a, no_gpu());
    a.read_only = true; // no autostart in snapshots
    for (n, s) in states {
        let mut st = server(n, *s);
        if *s == State::Crashed {
            st.message = Some("the server exited unasked".into());
        }
        status(&mut a, st);
    }
    a.read_only = false;
    update(
        &mut a,
        Action::Sup(SupEvent::Logs {
            name: "tiny".into(),
            lines: vec![
                "(APIServer pid=4242) INFO Starting vLLM server on http://127.0.0.1:8001".into(),
            ],
            lost: 0,
        }),
    );
    a
}

#[test]
fn snapshot_servers_starting_ready_crashed() {
    insta::assert_snapshot!(
        "servers_starting",
        screen(
            &servers_app(&[("tiny", State::Starting), ("demo", State::Stopped)]),
            100,
            20
        )
    );
    insta::assert_snapshot!(
        "servers_ready",
        screen(
            &servers_app(&[("tiny", State::Ready), ("demo", State::Ready)]),
            120,
            20
        )
    );
    insta::assert_snapshot!(
        "servers_crashed",
        screen(
            &servers_app(&[("tiny", State::Crashed), ("demo", State::Exited)]),
            100,
            20
        )
    );
}

#[test]
fn snapshot_gpu_without_a_gpu_and_with_devices() {
    let mut a = servers_app(&[("tiny", State::Ready)]);
    ch(&mut a, '2');
    insta::assert_snapshot!("gpu_none", screen(&a, 100, 20));
    let mut dev = FakeGpuSource::device(0, 21.5, 67, 4242);
    dev.processes[0].server = Some("tiny".into());
    let sample = FakeGpuSource::sample(GpuStatus::Ok, vec![dev, FakeGpuSource::sparse_device(1)]);
    let remote = GpuSample::empty(
        "node2",
        GpuStatus::Unreachable("http://node2:9400/metrics: connection refused".into()),
    );
    update(
        &mut a,
        Action::Gpu(Box::new(GpuView {
            samples: vec![sample, remote],
            ..GpuView::default()
        })),
    );
    insta::assert_snapshot!("gpu_devices", screen(&a, 100, 30));
}

#[test]
fn snapshot_chat_mid_stream() {
    let mut a = servers_app(&[("tiny", State::Ready)]);
    ch(&mut a, '4');
    a.chat.conv.turns.push(anorag::session::Turn {
        user: "What is a KV cache?".into(),
        answer: "It keeps the keys and values of earlier tokens so they are not computed again."
            .into(),
        meta: AnswerMeta {
            route: "tiny_qwen".into(),
            served_by: Some(served("tiny_qwen")),
            ttft_ms: Some(41.0),
            tokens_per_s: Some(66.5),
            usage: Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 16,
            }),
            ..AnswerMeta::default()
        },
    });
    ch(&mut a, 'i');
    typed(&mut a, "And paged attention?");
    let fx = key(&mut a, KeyCode::Enter);
    let Effect::ChatSend { id, .. } = fx[0].clone() else {
        panic!()
    };
    let attempt = Attempt {
        route: "tiny_qwen".into(),
        target: "vllm_openai http://127.0.0.1:8001/v1".into(),
        class: ErrorClass::Connect,
        status: None,
        message: "connection refused".into(),
    };
    update(
        &mut a,
        Action::Chat(ChatEvent::Started {
            id,
            served_by: served("builtin"),
            attempts: vec![attempt],
        }),
    );
    update(
        &mut a,
        Action::Chat(ChatEvent::FirstToken { id, ttft_ms: 52.3 }),
    );
    update(
        &mut a,
        Action::Chat(ChatEvent::Delta {
            id,
            text: "Paged attention stores the cache in fixed-size blocks".into(),
        }),
    );
    insta::assert_snapshot!("chat_streaming", screen(&a, 100, 24));
}

#[test]
fn snapshot_bench_running_and_done() {
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    let fx = ch(&mut a, 'r');
    let Effect::BenchStart { id, .. } = fx[0].clone() else {
        panic!()
    };
    update(&mut a, Action::BenchProgress(id, Box::new(progress(40))));
    insta::assert_snapshot!("bench_running", screen(&a, 120, 36));
    update(
        &mut a,
        Action::BenchDone(id, Ok(vec![result("tiny_qwen", 62.0)])),
    );
    a.bench.baseline = Some(result("baseline", 80.0));
    insta::assert_snapshot!("bench_done", screen(&a, 120, 36));
    insta::assert_snapshot!("bench_done_80x24", screen(&a, 80, 24));
}

#[test]
fn snapshot_routes_logs_help_and_quit_dialog() {
    let mut a = servers_app(&[("demo", State::Ready), ("tiny", State::Stopped)]);
    a.servers.started_here.insert("demo".into());
    ch(&mut a, '?');
    insta::assert_snapshot!("help_servers", screen(&a, 100, 30));
    key(&mut a, KeyCode::Esc);
    ch(&mut a, 'q');
    insta::assert_snapshot!("quit_dialog", screen(&a, 100, 20));
    key(&mut a, KeyCode::Esc);
    ch(&mut a, '6');
    insta::assert_snapshot!("logs_demo", screen(&a, 100, 12));
}

#[test]
fn every_pane_fits_80_by_24() {
    let mut a = servers_app(&[("tiny", State::Ready), ("demo", State::Crashed)]);
    let must_show = [
        ("Servers", &["tiny", "demo", "crashed"][..]),
        ("GPU", &["no GPU"][..]),
        ("Routes", &["ROUTE", "STATE"][..]),
        ("Chat", &["route tiny_qwen", "Message"][..]),
        ("Bench", &["route", "load", "requests"][..]),
        ("Logs", &["Logs"][..]),
    ];
    for (p, (pane, words)) in ['1', '2', '3', '4', '5', '6'].into_iter().zip(must_show) {
        ch(&mut a, p);
        let s = screen(&a, 80, 24);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 24, "{pane}");
        for (i, l) in lines.iter().enumerate() {
            assert!(
                l.chars().count() <= 80,
                "{pane}: line {i} is wider than 80: {l}"
            );
        }
        assert!(lines[0].contains("anorag-tui"), "{pane}");
        assert!(
            lines[1].contains("1 Servers") && lines[1].contains("6 Logs"),
            "{pane}"
        );
        // The hint bar is there and ends with a whole word, not a cut one.
        assert!(
            lines[23].contains("q quit") || lines[23].contains("? help"),
            "{pane}: {}",
            lines[23]
        );
        // The pane's box is closed on all sides.
        assert!(
            s.contains('┌') && s.contains('┐') && s.contains('└') && s.contains('┘'),
            "{pane}:\n{s}"
        );
        for w in words {
            assert!(s.contains(w), "{pane} at 80x24 does not show `{w}`:\n{s}");
        }
    }
}

/// The routes as the prober reports them: the default vLLM route down with its error and an
/// open circuit, the demo up with latency history and vLLM's gauges, the simulator up.
async fn probed_routes() -> anorag::telemetry::routes::RouteTable {
    use anorag::provider::circuit::CircuitState;
    use anorag::telemetry::history::Ring;
    use anorag::telemetry::routes::{Health, RouteTable};
    use anorag::telemetry::vllm_metrics::VllmMetrics;
    let cfg = anorag::config::load_str(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      tiny_qwen:\n        \
         base_url: http://127.0.0.1:9/v1\n        model: qwen2_5_0_5b\n        fallback: [builtin]\n      \
         demo: {base_url: http://127.0.0.1:8010/v1, model: demo}\n    default_route: tiny_qwen\n  \
         builtin: {model: anorag-sim}\n",
        "test.yaml",
    )
    .expect("valid config");
    let router = anorag::provider::factory::build(&cfg)
        .await
        .expect("router");
    let mut t = RouteTable::from_router(&router);
    for r in &mut t.routes {
        for tg in &mut r.targets {
            tg.checked_at = Some(NOW);
            match r.route.as_str() {
                "tiny_qwen" => {
                    tg.state = Health::Down;
                    tg.consecutive_failures = 7;
                    tg.last_error = Some("connect: connection refused".into());
                    tg.circuit.state = CircuitState::Open;
                    tg.circuit.reopens_in_ms = Some(12_000);
                }
                _ => {
                    tg.state = Health::Up;
                    let mut lat = Ring::new(60);
                    let mut run = Ring::new(60);
                    for i in 0..40 {
                        lat.push(Some(0.4 + f64::from(i % 7) * 0.1));
                        run.push(Some(f64::from(i % 5)));
                    }
                    tg.latency_ms = lat.last();
                    tg.latency_history = lat;
                    if r.route == "demo" {
                        tg.running_history = run;
                        tg.metrics = Some(VllmMetrics {
                            num_requests_running: Some(3.0),
                            num_requests_waiting: Some(1.0),
                            kv_cache_usage: Some(0.42),
                            generation_tokens_per_s: Some(512.0),
                            ..VllmMetrics::default()
                        });
                    }
                }
            }
        }
    }
    t
}

#[tokio::test]
async fn snapshot_routes_down_up_with_vllm_gauges() {
    let mut a = app();
    update(&mut a, Action::Routes(Box::new(probed_routes().await)));
    ch(&mut a, '3');
    insta::assert_snapshot!("routes", screen(&a, 120, 30));
    key(&mut a, KeyCode::Down);
    insta::assert_snapshot!("routes_demo_selected", screen(&a, 120, 30));
}

#[tokio::test]
async fn bench_form_follows_a_route_that_is_up_until_one_is_picked() {
    let mut a = app();
    assert_eq!(a.bench.form.route, 0, "tiny_qwen, the default");
    update(&mut a, Action::Routes(Box::new(probed_routes().await)));
    assert_eq!(
        a.chat.routes[a.bench.form.route], "demo",
        "the default is down, so the first up route that is not the simulator"
    );
    ch(&mut a, '5');
    key(&mut a, KeyCode::Right);
    assert_eq!(a.chat.routes[a.bench.form.route], "builtin");
    update(&mut a, Action::Routes(Box::new(probed_routes().await)));
    assert_eq!(
        a.chat.routes[a.bench.form.route], "builtin",
        "the operator's pick stays"
    );
    // The down route says why before a run.
    key(&mut a, KeyCode::Right);
    assert_eq!(a.chat.routes[a.bench.form.route], "tiny_qwen");
    let s = screen(&a, 120, 36);
    assert!(s.contains("tiny_qwen is down: connect:"), "{s}");
}

/// The Bench form refuses durations and rates no timer can hold (they used to panic later).
#[test]
fn bench_form_refuses_unusable_numbers_naming_the_field() {
    let mut a = app();
    key(&mut a, KeyCode::Char('5'));
    for field_value in ["inf", "1e20", "NaN", "-1"] {
        a.bench.form.by_duration = true;
        a.bench.field = 4;
        a.typing = Typing::BenchField(4, String::new());
        typed(&mut a, field_value);
        key(&mut a, KeyCode::Enter);
        let n = a.notice.clone().expect("a notice");
        assert!(n.error, "{field_value}");
        assert!(n.text.contains("is not a number of seconds"), "{}", n.text);
        assert!(matches!(a.typing, Typing::BenchField(4, _)), "stays open");
        a.typing = Typing::None;
    }
    a.bench.form.open = true;
    a.bench.field = 2;
    a.typing = Typing::BenchField(2, String::new());
    typed(&mut a, "inf");
    key(&mut a, KeyCode::Enter);
    assert!(a.notice.as_ref().unwrap().text.contains("is not a rate"));
}

/// A background task's panic is said on screen and kept for the help screen; the console
/// state stays as it was (it used to restore the terminal under a running UI).
#[test]
fn a_background_panic_is_reported_and_the_console_goes_on() {
    let mut a = app();
    key(&mut a, KeyCode::Char('3'));
    let fx = update(
        &mut a,
        Action::EnginePanic("boom at src/x.rs:1 (thread tokio-runtime-worker)".into()),
    );
    assert!(fx.is_empty());
    let n = a.notice.clone().unwrap();
    assert!(n.error && n.text.contains("internal error in a background task: boom"));
    assert_eq!(a.pane, Pane::Routes);
    assert!(!a.quit);
    ch(&mut a, '?');
    let text = screen(&a, 120, 40);
    assert!(text.contains("internal error: boom"), "{text}");
}

/// A config is code: what it started on its own is said (notice and the Servers title), and
/// `--no-autostart` leaves it stopped.
#[test]
fn autostart_is_said_and_can_be_turned_off() {
    let mut a = app();
    status(&mut a, server("demo", State::Stopped));
    let n = a.notice.clone().unwrap();
    assert!(
        n.text
            .starts_with("autostarted demo (autostart: true in the config"),
        "{}",
        n.text
    );
    assert_eq!(a.autostarted, ["demo"]);
    assert!(screen(&a, 120, 30).contains("autostarted demo"));
    let mut off = app();
    off.no_autostart = true;
    assert!(status(&mut off, server("demo", State::Stopped)).is_empty());
    assert!(off.autostarted.is_empty());
}

/// A read-only console shows no keys it would refuse, and says why when one is pressed.
#[test]
fn read_only_hides_refused_keys_from_hints_and_help() {
    let routes = ["tiny_qwen"].map(String::from).to_vec();
    let mut ro = App::new(KeyMap::defaults(), routes, "tiny_qwen", true, 100);
    ro.now = NOW;
    let hints = screen(&ro, 120, 30);
    let last = hints.lines().last().unwrap().to_string();
    assert!(!last.contains("start") && !last.contains("stop"), "{last}");
    assert!(last.contains("logs"), "{last}");
    ch(&mut ro, '?');
    let help = screen(&ro, 120, 40);
    assert!(!help.contains("start the selected server"), "{help}");
    assert!(help.contains("the selected server's log"), "{help}");
    key(&mut ro, KeyCode::Esc);
    key(&mut ro, KeyCode::Char('5'));
    let bench = screen(&ro, 120, 30);
    assert!(!bench.lines().last().unwrap().contains("run"), "{bench}");
    ch(&mut ro, 'r');
    assert!(ro
        .notice
        .as_ref()
        .unwrap()
        .text
        .contains("read-only console: cannot run load tests"));
    let rw = screen(&app(), 120, 30);
    assert!(rw.lines().last().unwrap().contains("s start"));
}

/// NO_COLOR: no cell keeps a colour; highlights stay visible as reverse video.
#[test]
fn no_color_strips_colours_and_keeps_highlights() {
    let mut a = app();
    a.no_color = true;
    let backend = TestBackend::new(100, 30);
    let mut t = Terminal::new(backend).unwrap();
    t.draw(|f| anorag::tui::view::render(f, &a)).unwrap();
    let buf = t.backend().buffer();
    assert!(buf
        .content
        .iter()
        .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset));
    assert!(buf
        .content
        .iter()
        .any(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED)));
}

fn ray_fixture(name: &str) -> serde_json::Value {
    let p = format!("{}/tests/fixtures/ray/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A console on the recorded two-node cluster: profile `demo` ready on node2 (the recorded
/// running job), `big` pending (the recorded pending job), and someone else's job.
fn cluster_app() -> App {
    use anorag::cluster::ray::{parse_job, parse_nodes};
    let mut a = app();
    a.now = 1_796_295_565.0;
    let nodes = parse_nodes(
        &ray_fixture("nodes_summary.json"),
        &ray_fixture("cluster_status.json"),
    );
    let running = parse_job(&ray_fixture("job_running.json")).unwrap();
    let pending = parse_job(&ray_fixture("job_pending.json")).unwrap();
    let mut theirs = parse_job(&ray_fixture("job_stopped.json")).unwrap();
    theirs.metadata.clear();
    theirs.id = "raysubmit_someone_else".into();
    theirs.entrypoint = "python train.py --epochs 3".into();
    let view = anorag::cluster::ClusterView {
        cluster: "farm".into(),
        address: "http://127.0.0.1:8265".into(),
        version: Some("2.60.0".into()),
        nodes,
        jobs: vec![running.clone(), pending.clone(), theirs],
        error: None,
        read_at: Some(a.now - 1.0),
    };
    update(&mut a, Action::Sup(SupEvent::Cluster(Box::new(view))));
    let mut demo = server("demo", State::Ready);
    demo.pid = None;
    demo.pgid = None;
    demo.cluster = Some("farm".into());
    demo.node = Some("node2".into());
    demo.job = Some(running.id.clone());
    demo.log_path = format!("ray job {}", running.id);
    demo.started_unix = running.start_ms.map(|t| t as f64 / 1000.0);
    let mut big = server("big", State::Starting);
    big.pid = None;
    big.pgid = None;
    big.cluster = Some("farm".into());
    big.job = Some(pending.id.clone());
    big.started_unix = pending.start_ms.map(|t| t as f64 / 1000.0);
    big.message = Some("pending: needs 2 GPUs, the cluster has 0 free".into());
    for s in [demo, big] {
        update(&mut a, Action::Sup(SupEvent::Status(Box::new(s))));
    }
    a
}

#[test]
fn the_cluster_pane_shows_nodes_our_jobs_and_others() {
    let mut a = cluster_app();
    ch(&mut a, '7');
    assert_eq!(a.pane, Pane::Cluster);
    let text = screen(&a, 140, 22);
    insta::assert_snapshot!("cluster_pane", text);
    assert!(
        text.contains("node2") && text.contains("head (head)"),
        "{text}"
    );
    assert!(text.contains("pending: needs 2 GPUs"), "{text}");
    // The keys act on our profiles' rows; someone else's job is refused with a reason.
    let fx = ch(&mut a, 's');
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Server(Op::Start, n) if n == "demo")),
        "{fx:?}"
    );
    ch(&mut a, 'G');
    let fx = ch(&mut a, 'x');
    assert!(fx.is_empty(), "{fx:?}");
    assert!(a
        .notice
        .as_ref()
        .unwrap()
        .text
        .contains("not one of this config's profiles"));
    ch(&mut a, 'g');
    ch(&mut a, 'j');
    ch(&mut a, 'x');
    assert_eq!(a.overlay, Overlay::ConfirmStop("big".into()));
    let dialog = screen(&a, 140, 22);
    assert!(dialog.contains("Ray stops its job"), "{dialog}");
}

#[test]
fn the_servers_pane_says_which_node_runs_a_cluster_server() {
    let a = cluster_app();
    let text = screen(&a, 120, 20);
    insta::assert_snapshot!("servers_on_a_cluster", text);
    assert!(text.contains("PID/NODE"), "{text}");
}

#[test]
fn an_unreachable_cluster_keeps_its_last_known_state_and_says_why() {
    let mut a = cluster_app();
    let mut v = a.cluster.views[0].clone();
    v.error = Some("cluster farm (http://127.0.0.1:8265): GET /api/version: unreachable: Connection refused (os error 111)".into());
    update(&mut a, Action::Sup(SupEvent::Cluster(Box::new(v))));
    ch(&mut a, '7');
    let text = screen(&a, 140, 22);
    assert!(text.contains("UNREACHABLE"), "{text}");
    assert!(text.contains("read 1s ago"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains("node2"), "the last known nodes stay: {text}");
}

#[test]
fn the_bench_pane_shows_the_servers_queue_and_cache_under_the_client_charts() {
    use anorag::bench::server_metrics::{ServerSample, ServerSeries};
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    let fx = ch(&mut a, 'r');
    let Effect::BenchStart { id, .. } = fx[0].clone() else {
        panic!()
    };
    // Six seconds of a queue building up: running at the cap, then requests waiting and
    // the KV cache filling, one preemption at the end.
    let samples: Vec<ServerSample> = (0..12)
        .map(|i| ServerSample {
            t_s: 0.25 + 0.5 * i as f64,
            running: Some(8.0),
            waiting: Some((i as f64 - 4.0).max(0.0)),
            kv_cache_usage: Some(0.1 + 0.07 * i as f64),
            preemptions: Some(if i >= 11 { 1.0 } else { 0.0 }),
            generation_tokens_per_s: Some(300.0 + 5.0 * i as f64),
            prefix_cache_hit_rate: Some(0.25),
        })
        .collect();
    let mut p = progress(40);
    p.server = Some(ServerSeries::from_samples(&samples, 0));
    update(&mut a, Action::BenchProgress(id, Box::new(p)));
    let text = screen(&a, 120, 48);
    insta::assert_snapshot!("bench_running_with_server", text);
    assert!(
        text.contains("vLLM requests: running 8 waiting 7"),
        "{text}"
    );
    assert!(
        text.contains("KV cache 87.0% · preemptions 1 · prefix hits 25%"),
        "{text}"
    );
    assert!(text.contains("server generation tok/s (355 now)"), "{text}");
}

#[test]
fn the_bench_form_runs_the_prefix_and_multi_turn_workloads() {
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    to_field(&mut a, "workload");
    key(&mut a, KeyCode::Right);
    assert!(screen(&a, 120, 36).contains("prefix ×10"));
    let fx = ch(&mut a, 'r');
    let Effect::BenchStart { plan, .. } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert!(
        matches!(
            plan.workload,
            anorag::bench::Workload::Prefix {
                groups: 10,
                prefix_len: 256,
                suffix_len: 64,
                ..
            }
        ),
        "{:?}",
        plan.workload
    );
    let mut b = servers_app(&[("demo", State::Ready)]);
    ch(&mut b, '5');
    to_field(&mut b, "workload");
    key(&mut b, KeyCode::Left);
    let fx = ch(&mut b, 'r');
    let Effect::BenchStart { plan, .. } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert!(
        matches!(
            plan.workload,
            anorag::bench::Workload::MultiTurn { turns: 4, .. }
        ),
        "{:?}",
        plan.workload
    );
}

/// Moves the Bench form's cursor to the field named `name`, with the keys a user would press.
pub(crate) fn to_field(a: &mut App, name: &str) {
    let at = anorag::tui::app::BENCH_FIELDS
        .iter()
        .position(|f| *f == name)
        .unwrap();
    ch(a, 'g');
    for _ in 0..at {
        ch(a, 'j');
    }
    assert_eq!(a.bench.field, at, "{name}");
}

/// What a probe at `load` concurrent requests measures on a server whose knee is at 4:
/// TTFT 40 ms (p99 52 ms) up to 4, 300 ms (p99 390 ms) past it.
fn probe_result(load: usize) -> BenchResult {
    let mut r = result("demo", if load <= 4 { 40.0 } else { 300.0 });
    r.request_throughput = load.min(4) as f64 * 2.0;
    r
}

#[test]
fn the_bench_form_finds_the_highest_concurrency_that_meets_an_slo() {
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    key(&mut a, KeyCode::Right);
    assert_eq!(a.chat.routes[a.bench.form.route], "demo");
    to_field(&mut a, "mode");
    key(&mut a, KeyCode::Right);
    assert!(a.bench.form.find_max);
    // A bad SLO is refused naming the field and what is wrong; the form keeps the old one.
    to_field(&mut a, "SLO");
    key(&mut a, KeyCode::Enter);
    for _ in 0..anorag::tui::app::DEFAULT_SLO.len() {
        key(&mut a, KeyCode::Backspace);
    }
    typed(&mut a, "p99_ttft<=100");
    key(&mut a, KeyCode::Enter);
    let n = a.notice.as_ref().unwrap();
    assert!(
        n.text.starts_with("SLO: `p99_ttft`: not a metric"),
        "{}",
        n.text
    );
    assert_eq!(a.bench.form.slo, anorag::tui::app::DEFAULT_SLO);
    a.typing = Typing::None;
    key(&mut a, KeyCode::Enter);
    for _ in 0..anorag::tui::app::DEFAULT_SLO.len() {
        key(&mut a, KeyCode::Backspace);
    }
    typed(&mut a, "p99_ttft_ms<=100");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.bench.form.slo, "p99_ttft_ms<=100");
    // Each probe's result decides the next load: doubling, then bisection, as the CLI does.
    let mut fx = ch(&mut a, 'r');
    let mut loads = Vec::new();
    let mut mid_search = None;
    while let Some(Effect::BenchStart { id, route, plan }) = fx.first().cloned() {
        assert_eq!(route, "demo");
        let anorag::bench::Load::Closed { concurrency } = plan.load else {
            panic!("{:?}", plan.load)
        };
        assert_eq!(
            plan.stop,
            anorag::bench::Stop::Requests(100),
            "the form's stop"
        );
        loads.push(concurrency);
        // The live control is the search's: + is refused while it probes.
        assert!(ch(&mut a, '+').is_empty());
        if loads.len() == 5 {
            let mut p = progress(40);
            p.concurrency = Some(concurrency);
            p.ttft_p99_ms = Some(320.0);
            update(&mut a, Action::BenchProgress(id, Box::new(p)));
            mid_search = Some(screen(&a, 120, 40));
        }
        fx = update(
            &mut a,
            Action::BenchDone(id, Ok(vec![probe_result(concurrency)])),
        );
    }
    assert_eq!(loads, [1, 2, 4, 8, 6, 5]);
    let mid = mid_search.unwrap();
    insta::assert_snapshot!("bench_find_max_probing", mid);
    assert!(mid.contains("find max · probe 5 · concurrency 6"), "{mid}");
    assert!(
        mid.contains("p99_ttft_ms ≤ 100 · meets at 4, misses at 8"),
        "{mid}"
    );
    let n = a.notice.as_ref().unwrap();
    assert!(
        n.text.contains("highest concurrency that meets the SLO: 4 (p99_ttft_ms 52.0 (48.0 under the limit)); 5 misses it"),
        "{}",
        n.text
    );
    let done = screen(&a, 120, 40);
    insta::assert_snapshot!("bench_find_max_done", done);
    assert!(done.contains("answer: concurrency 4"), "{done}");
    assert!(
        done.contains(" 6        5  misses            390.0    100      0     8.00"),
        "{done}"
    );
    // w saves the search with every probe's result.
    let fx = ch(&mut a, 'w');
    let Some(Effect::Save { path, contents }) = fx.first() else {
        panic!("{fx:?}")
    };
    assert!(path.to_string_lossy().starts_with("anorag-find-max-demo-"));
    let v: serde_json::Value = serde_json::from_str(contents).unwrap();
    assert_eq!(v["find_max"]["answer"], 4.0);
    assert_eq!(v["find_max"]["first_miss"], 5.0);
    assert_eq!(v["results"].as_array().unwrap().len(), 6);
}

#[test]
fn esc_stops_a_search_without_judging_the_probe_it_cut_short() {
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    to_field(&mut a, "load");
    key(&mut a, KeyCode::Right);
    to_field(&mut a, "mode");
    key(&mut a, KeyCode::Right);
    let fx = ch(&mut a, 'r');
    let Some(Effect::BenchStart { id, plan, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert!(
        matches!(plan.load, anorag::bench::Load::Open { rate, .. } if rate == 1.0),
        "an open form searches the rate: {:?}",
        plan.load
    );
    let fx = update(&mut a, Action::BenchDone(id, Ok(vec![probe_result(1)])));
    let Some(Effect::BenchStart { id, plan, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert!(matches!(plan.load, anorag::bench::Load::Open { rate, .. } if rate == 2.0));
    assert!(key(&mut a, KeyCode::Esc).contains(&Effect::BenchControl(Control::Cancel)));
    // The cut-short run's figures (here: a miss) must not count as a probe.
    let fx = update(&mut a, Action::BenchDone(id, Ok(vec![probe_result(8)])));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(a.bench.running.is_none());
    let s = a.bench.find_max.as_ref().unwrap();
    assert_eq!(s.search.probes.len(), 1);
    let n = a.notice.as_ref().unwrap();
    assert!(
        n.text.starts_with(
            "find max stopped after 1 probes; rate (req/s) 1 met the SLO; stopped before a knee was found"
        ),
        "{}",
        n.text
    );
    assert!(screen(&a, 120, 40).contains("find max stopped · 1 probes"));
    // A single run afterwards leaves find-max mode's view.
    to_field(&mut a, "mode");
    key(&mut a, KeyCode::Right);
    assert!(matches!(
        ch(&mut a, 'r').first(),
        Some(Effect::BenchStart { .. })
    ));
    assert!(a.bench.find_max.is_none());
}

/// The console's search end to end: each probe the form starts is run by the load-test engine
/// against a simulator told to have a knee (at most 4 requests generate at once; a fifth waits
/// a whole answer, ~200 ms, for its first token), and the console answers 4 as the CLI does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_search_finds_the_knee_a_simulator_is_told_to_have() {
    use anorag::sim::{self, Flavor, SimConfig};
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(20, 10, 20);
    cfg.max_running = Some(4);
    cfg.record_requests = false;
    let s = sim::start(cfg).await.unwrap();
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      demo: {{base_url: \"{}\", model: qwen2_5_0_5b}}\n",
        s.base_url()
    );
    let router = std::sync::Arc::new(
        anorag::provider::factory::build(&anorag::config::load_str(&yaml, "t.yaml").unwrap())
            .await
            .unwrap(),
    );
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    key(&mut a, KeyCode::Right);
    let set = |a: &mut App, field: &str, text: &str| {
        to_field(a, field);
        key(a, KeyCode::Enter);
        for _ in 0..40 {
            key(a, KeyCode::Backspace);
        }
        typed(a, text);
        key(a, KeyCode::Enter);
    };
    set(&mut a, "requests / seconds", "24");
    set(&mut a, "input tokens", "16");
    set(&mut a, "output tokens", "20");
    to_field(&mut a, "mode");
    key(&mut a, KeyCode::Right);
    set(&mut a, "SLO", "p99_ttft_ms<=110");
    let mut fx = ch(&mut a, 'r');
    while let Some(Effect::BenchStart { id, route, plan }) = fx.first().cloned() {
        assert_eq!(route, "demo");
        let t = anorag::bench::BenchTarget::from_router(router.clone(), Some(&route)).unwrap();
        let h = anorag::bench::spawn(t, vec![*plan]);
        let r = h.done.await.unwrap();
        fx = update(&mut a, Action::BenchDone(id, r));
    }
    let s = &a.bench.find_max.as_ref().unwrap().search;
    let probed: Vec<f64> = s.probes.iter().map(|p| p.load).collect();
    assert_eq!(probed, [1.0, 2.0, 4.0, 6.0, 5.0], "{:?}", s.probes);
    assert_eq!(s.answer(), Some(4.0), "{:?}", s.probes);
    assert!(s.probes.iter().all(|p| p.completed == 24 && p.failed == 0));
    let text = screen(&a, 120, 40);
    assert!(text.contains("answer: concurrency 4"), "{text}");
}

/// A compared run shows both servers' own view after it: running requests and KV cache of
/// each route over its run, beside the client's TTFT p99 of each.
#[test]
fn a_compared_run_shows_both_servers_series() {
    use anorag::bench::server_metrics::{ServerMetrics, ServerSample};
    let view = |running: f64, kv: f64| ServerMetrics {
        url: "http://127.0.0.1:8001/metrics".into(),
        interval_s: 0.5,
        samples: (0..12)
            .map(|i| ServerSample {
                t_s: 0.25 + 0.5 * i as f64,
                running: Some(running),
                waiting: Some(0.0),
                kv_cache_usage: Some(kv * (i + 1) as f64 / 12.0),
                ..ServerSample::default()
            })
            .collect(),
        ..ServerMetrics::default()
    };
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    key(&mut a, KeyCode::Right);
    to_field(&mut a, "compare with");
    key(&mut a, KeyCode::Right);
    let fx = ch(&mut a, 'r');
    let Effect::BenchStart { id, .. } = fx[0].clone() else {
        panic!("{fx:?}")
    };
    let mut first = result("demo", 62.0);
    first.server_metrics = Some(view(8.0, 0.4));
    let fx = update(&mut a, Action::BenchDone(id, Ok(vec![first])));
    let Effect::BenchStart { id, .. } = fx[0].clone() else {
        panic!("{fx:?}")
    };
    let mut second = result("tiny_qwen", 90.0);
    second.server_metrics = Some(view(4.0, 0.9));
    for v in second.series.ttft_p99_ms.iter_mut().flatten() {
        *v *= 1.5;
    }
    update(&mut a, Action::BenchDone(id, Ok(vec![second])));
    let text = screen(&a, 120, 40);
    insta::assert_snapshot!("bench_compare_with_server", text);
    for t in [
        "demo   tiny_qwen      B/A",
        "TTFT p99 (ms)",
        "vLLM running",
        "KV cache %",
    ] {
        assert!(text.contains(t), "{t}: {text}");
    }
}

/// The form's third load: an open loop whose rate ramps up (vLLM's linear ramp-up from 1 req/s
/// to the rate), over a number of requests; the live charts show what was really sent.
#[test]
fn the_bench_form_ramps_an_open_loop_up_and_shows_the_rate_achieved() {
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    to_field(&mut a, "load");
    key(&mut a, KeyCode::Right);
    key(&mut a, KeyCode::Right);
    assert!(a.bench.form.open && a.bench.form.ramp);
    let text = screen(&a, 120, 36);
    assert!(text.contains("load open, ramp-up"), "{text}");
    assert!(text.contains("rate 1 → 5 req/s"), "{text}");
    let fx = ch(&mut a, 'r');
    let Some(Effect::BenchStart { id, plan, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert!(
        matches!(plan.load, anorag::bench::Load::Open { rate, .. } if rate == 5.0),
        "{:?}",
        plan.load
    );
    let ramp = plan.ramp.expect("a ramp");
    assert_eq!((ramp.start_rps, ramp.end_rps), (1.0, 5.0));
    let mut p = progress(20);
    p.rate = Some(5.0);
    update(&mut a, Action::BenchProgress(id, Box::new(p)));
    let text = screen(&a, 120, 36);
    assert!(text.contains("sent/s (9, target 5)"), "{text}");
    // A ramp runs over a request count: with a duration it is refused, naming the field.
    key(&mut a, KeyCode::Esc);
    update(&mut a, Action::BenchDone(id, Ok(vec![])));
    to_field(&mut a, "stop after");
    key(&mut a, KeyCode::Right);
    assert!(a.bench.form.by_duration);
    assert!(ch(&mut a, 'r').is_empty());
    let n = a.notice.as_ref().unwrap();
    assert!(
        n.error && n.text.contains("set stop after to requests"),
        "{}",
        n.text
    );
    // Back to a closed loop: the load cycles round.
    to_field(&mut a, "load");
    key(&mut a, KeyCode::Right);
    assert!(!a.bench.form.open && !a.bench.form.ramp);
}

/// A multi-turn run's result shows what the history costs, turn by turn.
#[test]
fn a_multi_turn_result_shows_each_turns_prompt_and_latency() {
    use anorag::bench::conversation::TurnStats;
    let mut a = servers_app(&[("demo", State::Ready)]);
    ch(&mut a, '5');
    to_field(&mut a, "workload");
    key(&mut a, KeyCode::Left);
    let fx = ch(&mut a, 'r');
    let Some(Effect::BenchStart { id, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    let mut r = result("tiny_qwen", 40.0);
    r.per_turn = (1..=4)
        .map(|t| TurnStats {
            turn: t,
            completed: 25,
            failed: 0,
            ttft_p50_ms: Some(20.0 * f64::from(t)),
            ttft_p99_ms: Some(30.0 * f64::from(t)),
            e2el_p50_ms: Some(300.0 + f64::from(t)),
            mean_prompt_tokens: Some(27.0 + 36.0 * f64::from(t - 1)),
        })
        .collect();
    update(&mut a, Action::BenchDone(id, Ok(vec![r])));
    let text = screen(&a, 120, 40);
    assert!(
        text.contains("turn    prompt tok   TTFT p50       p99   E2EL p50"),
        "{text}"
    );
    assert!(
        text.contains("4              135       80.0     120.0      304.0"),
        "{text}"
    );
}

/// A console resolves a cluster route to its node's address when it starts. When Ray later
/// runs the server on another node, the console says once that the route still points at the
/// old address.
#[tokio::test]
async fn a_cluster_server_that_moved_off_its_routes_address_is_said_once() {
    let yaml = "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      demo: {base_url: \"http://127.0.0.1:8010/v1\", model: m}\n";
    let router =
        anorag::provider::factory::build(&anorag::config::load_str(yaml, "t.yaml").unwrap())
            .await
            .unwrap();
    let mut a = app();
    update(
        &mut a,
        Action::Routes(Box::new(
            anorag::telemetry::routes::RouteTable::from_router(&router),
        )),
    );
    let on = |host: &str, node: &str| {
        let mut s = server("demo", State::Ready);
        s.pid = None;
        s.cluster = Some("farm".into());
        s.node = Some(node.into());
        s.host = host.into();
        s
    };
    // Where the route points (a loopback name is the same place): nothing to say.
    status(&mut a, on("localhost", "node2"));
    assert!(a.notice.is_none(), "{:?}", a.notice);
    status(&mut a, on("10.0.0.3", "node3"));
    let n = a.notice.take().expect("a warning");
    assert!(n.error);
    assert_eq!(
        n.text,
        "demo now runs at 10.0.0.3 (node3), but route demo still points at 127.0.0.1: restart the console to follow it"
    );
    status(&mut a, on("10.0.0.3", "node3"));
    assert!(a.notice.is_none(), "said once: {:?}", a.notice);
}

/// A gateway's feed as the Traffic pane gets it: a fallback (tiny_qwen refused, served by
/// builtin), one streaming, one failed on every route, one whose client left mid-stream, one
/// queued, five done; the seconds with per-route figures and the circuits (tiny_qwen's open);
/// a notice.
fn traffic_view(addr: &str) -> anorag::traffic::GatewayView {
    use anorag::traffic::wire::parse_line;
    let t0: u64 = 1_795_600_000_000;
    let mut lines: Vec<String> = Vec::new();
    let start = |id: u64, dt: u64, client: &str, model: &str, route: &str| {
        format!(
            r#"{{"type":"start","id":{id},"at_ms":{},"client":"{client}","dialect":"openai","model":"{model}","route":"{route}","stream":true}}"#,
            t0 + dt
        )
    };
    let end = |id: u64,
               outcome: &str,
               class: &str,
               status: u16,
               route: &str,
               chain: &str,
               tok: u64,
               ttft: &str| {
        format!(
            r#"{{"type":"end","id":{id},"outcome":"{outcome}","class":{class},"status":{status},"route":"{route}","server":"http://127.0.0.1:8010/v1","chain":"{chain}","prompt_tokens":12,"completion_tokens":{tok},"ttft_ms":{ttft},"duration_ms":840.5,"queue_ms":0.2,"upstream_ms":838.0,"overhead_us":61.0,"answer_ms":3.1,"headers_ms":9.4,"stage":{}}}"#,
            if outcome == "cancelled" {
                "\"streaming\""
            } else {
                "null"
            }
        )
    };
    lines.push(
        r#"{"type":"notice","at_ms":1795599999000,"message":"config reloaded: 3 routes"}"#.into(),
    );
    for i in 0..5u64 {
        lines.push(start(10 + i, 100 + i, "app-web", "demo", "demo"));
        lines.push(end(
            10 + i,
            "ok",
            "null",
            200,
            "demo",
            "demo ok",
            64,
            "61.5",
        ));
    }
    lines.push(start(1, 200, "app-web", "gpt-4o-mini", "tiny_qwen"));
    lines.push(r#"{"type":"trying","id":1,"route":"tiny_qwen","target":"vllm http://127.0.0.1:8001/v1","attempt":1,"budget":3}"#.into());
    lines.push(r#"{"type":"attempt","id":1,"route":"tiny_qwen","target":"vllm http://127.0.0.1:8001/v1","class":"connect","status":null,"message":"cannot connect to 127.0.0.1:8001: Connection refused"}"#.into());
    lines.push(
        r#"{"type":"trying","id":1,"route":"builtin","target":"builtin","attempt":2,"budget":3}"#
            .into(),
    );
    lines.push(r#"{"type":"stage","id":1,"stage":"waiting_first_token"}"#.into());
    lines.push(r#"{"type":"first_token","id":1,"ttft_ms":42.0}"#.into());
    lines.push(r#"{"type":"fallback","id":1,"from":"tiny_qwen","to":"builtin","reason":"connect","attempt":2,"budget":3}"#.into());
    lines.push(end(
        1,
        "ok",
        "null",
        200,
        "builtin",
        "tiny_qwen x connect -> builtin ok",
        48,
        "42.0",
    ));
    lines.push(start(2, 300, "batch-job", "demo", "demo"));
    lines.push(r#"{"type":"trying","id":2,"route":"demo","target":"vllm http://127.0.0.1:8010/v1","attempt":1,"budget":3}"#.into());
    lines.push(r#"{"type":"first_token","id":2,"ttft_ms":60.0}"#.into());
    lines.push(start(3, 400, "app-web", "tiny_qwen", "tiny_qwen"));
    lines.push(r#"{"type":"attempt","id":3,"route":"tiny_qwen","target":"vllm http://127.0.0.1:8001/v1","class":"server","status":502,"message":"bad gateway"}"#.into());
    lines.push(r#"{"type":"attempt","id":3,"route":"builtin","target":"builtin","class":"overloaded","status":503,"message":"busy"}"#.into());
    lines.push(end(
        3,
        "error",
        "\"overloaded\"",
        503,
        "tiny_qwen",
        "tiny_qwen x server 502 -> builtin x overloaded 503 -> failed",
        0,
        "null",
    ));
    lines.push(start(4, 500, "127.0.0.1", "demo", "demo"));
    lines.push(r#"{"type":"first_token","id":4,"ttft_ms":58.0}"#.into());
    lines.push(end(
        4,
        "cancelled",
        "\"cancelled\"",
        499,
        "demo",
        "demo ok",
        7,
        "58.0",
    ));
    lines.push(start(5, 600, "app-web", "demo", "demo"));
    for s in 0..30u64 {
        lines.push(format!(
            r#"{{"type":"second","t":{},"started":{},"ok":{},"errors":{{"overloaded":{}}},"cancelled":{},"fallbacks":{},"in_flight":2,"queued":1,"completion_tokens":300,"ttft_p50_ms":60.1,"ttft_p99_ms":75.0,"overhead_p50_us":58.0,"overhead_p99_us":140.0,"routes":{{"demo":{{"requests":{},"in_flight":2,"completion_tokens":300,"ttft_p50_ms":60.1,"ttft_p99_ms":75.0}},"builtin":{{"requests":1,"fallbacks_in":1,"completion_tokens":48,"ttft_p50_ms":42.0,"ttft_p99_ms":42.0}},"tiny_qwen":{{"errors":1,"fallbacks_out":1}}}},"circuits":[{{"route":"tiny_qwen","target":"vllm http://127.0.0.1:8001/v1","state":"open","reopens_in_ms":4200,"consecutive_failures":3,"trips":1,"last_error":"connect"}},{{"route":"demo","target":"vllm http://127.0.0.1:8010/v1","state":"closed"}},{{"route":"builtin","target":"builtin","state":"closed"}}]}}"#,
            t0 / 1000 - 30 + s,
            5 + s % 4,
            4 + s % 4,
            u64::from(s == 29),
            u64::from(s == 29),
            u64::from(s == 29),
            4 + s % 4,
        ));
    }
    lines.push(r#"{"type":"notice","at_ms":1795600000700,"message":"circuit open: route tiny_qwen target vllm http://127.0.0.1:8001/v1 after 3 failures (connect); tried again in 4.2 s"}"#.into());
    let mut v = anorag::traffic::GatewayView::new(addr);
    v.connected();
    for l in &lines {
        v.apply(parse_line(l.as_bytes()).unwrap_or_else(|e| panic!("{e}: {l}")));
    }
    v
}

/// The screen with wall-clock times (local, so they differ by machine) masked.
fn traffic_screen(a: &App, w: u16, h: u16) -> String {
    let s: Vec<char> = screen(a, w, h).chars().collect();
    let digit = |i: usize| s.get(i).is_some_and(char::is_ascii_digit);
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let time = [0, 1, 3, 4, 6, 7].iter().all(|d| digit(i + d))
            && s.get(i + 2) == Some(&':')
            && s.get(i + 5) == Some(&':');
        if time {
            out.push_str("hh:mm:ss");
            i += 8;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn traffic_app(views: Vec<anorag::traffic::GatewayView>) -> (App, Vec<Effect>) {
    let mut a = app();
    let fx = update(&mut a, Action::Traffic(std::sync::Arc::new(views)));
    ch(&mut a, '8');
    (a, fx)
}

#[test]
fn snapshot_traffic_busy_opened_empty_and_unreachable() {
    let (mut a, fx) = traffic_app(vec![traffic_view("127.0.0.1:8090")]);
    assert_eq!(a.pane, Pane::Traffic);
    // The events went to the console's log too.
    let Some(Effect::Log(logged)) = fx.first() else {
        panic!("{fx:?}")
    };
    assert!(
        logged
            .iter()
            .any(|l| l.contains("route tiny_qwen failed (connect); served by builtin")),
        "{logged:?}"
    );
    insta::assert_snapshot!("traffic_busy", traffic_screen(&a, 200, 60));
    insta::assert_snapshot!("traffic_busy_80x24", traffic_screen(&a, 80, 24));
    // The fallback (third row, newest first: 5 queued, 4 cancelled, 3 failed, 2, 1).
    for _ in 0..4 {
        ch(&mut a, 'j');
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.traffic.open, Some(1));
    let s = traffic_screen(&a, 200, 60);
    for want in [
        "request 1",
        "tiny_qwen x connect -> builtin ok",
        "x tiny_qwen: connect: cannot connect to 127.0.0.1:8001",
        "connect + headers",
        "our overhead (µs)",
    ] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
    insta::assert_snapshot!("traffic_opened", s);
    insta::assert_snapshot!("traffic_opened_80x24", traffic_screen(&a, 80, 24));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.traffic.open, None, "esc closes the request first");
    assert_eq!(a.pane, Pane::Traffic);

    let mut empty = anorag::traffic::GatewayView::new("127.0.0.1:8090");
    empty.connected();
    let (a, _) = traffic_app(vec![empty]);
    insta::assert_snapshot!("traffic_empty", traffic_screen(&a, 200, 60));
    insta::assert_snapshot!("traffic_empty_80x24", traffic_screen(&a, 80, 24));

    // Down: said so, with why, and the last figures kept.
    let mut down = traffic_view("127.0.0.1:8090");
    down.disconnected("cannot reach the gateway: connection refused");
    let (a, _) = traffic_app(vec![down, {
        let mut v = anorag::traffic::GatewayView::new("127.0.0.1:8091");
        v.disconnected("cannot reach the gateway: connection refused");
        v
    }]);
    let s = traffic_screen(&a, 200, 60);
    assert!(s.contains("DOWN cannot reach the gateway"), "{s}");
    assert!(s.contains("since watched: "), "{s}");
    insta::assert_snapshot!("traffic_unreachable", s);
    insta::assert_snapshot!("traffic_unreachable_80x24", traffic_screen(&a, 80, 24));
}

fn late_start(id: u64, at_ms: u64) -> anorag::traffic::FeedEvent {
    anorag::traffic::FeedEvent::Start(anorag::gateway::events::Arrival {
        id,
        at_ms,
        client: "late".into(),
        dialect: "openai".into(),
        model: "demo".into(),
        route: "demo".into(),
        stream: true,
    })
}

#[test]
fn traffic_pauses_filters_and_hands_its_route_to_chat_and_bench() {
    let (mut a, _) = traffic_app(vec![traffic_view("127.0.0.1:8090")]);
    let first: Vec<u64> = a.traffic_rows().iter().map(|r| r.id).collect();
    assert_eq!(&first[..5], &[5, 4, 3, 2, 1], "newest first");
    // Paused: the list stays as it was while new requests arrive and the counters move.
    ch(&mut a, 'p');
    let mut more = traffic_view("127.0.0.1:8090");
    more.apply(late_start(99, 1_795_600_001_000));
    update(
        &mut a,
        Action::Traffic(std::sync::Arc::new(vec![more.clone()])),
    );
    let paused: Vec<u64> = a.traffic_rows().iter().map(|r| r.id).collect();
    assert_eq!(paused, first, "paused");
    assert_eq!(a.traffic.views[0].row(99).map(|r| r.id), Some(99));
    ch(&mut a, 'p');
    assert_eq!(a.traffic_rows()[0].id, 99, "live again");
    // Filters: by stage, by key, by route (asked or served), by status.
    for (f, want) in [
        ("stage:error", vec![3]),
        ("key:batch", vec![2]),
        ("route:builtin", vec![1]),
        ("status:499", vec![4]),
        ("stage:cancelled demo", vec![4]),
    ] {
        ch(&mut a, '/');
        typed(&mut a, f);
        key(&mut a, KeyCode::Enter);
        let got: Vec<u64> = a.traffic_rows().iter().map(|r| r.id).collect();
        assert_eq!(got, want, "{f}");
        key(&mut a, KeyCode::Esc);
        assert!(a.filter().is_none());
    }
    // The selected request's route (the one that served it) goes to chat and to bench.
    let at = a.traffic_rows().iter().position(|r| r.id == 1).unwrap();
    for _ in 0..at {
        ch(&mut a, 'j');
    }
    ch(&mut a, 'c');
    assert_eq!(a.pane, Pane::Chat);
    assert_eq!(a.chat_route(), Some("builtin"));
    ch(&mut a, '8');
    ch(&mut a, 'b');
    assert_eq!(a.pane, Pane::Bench);
    assert_eq!(a.chat.routes[a.bench.form.route], "builtin");
    // A selection stays on its request as newer ones arrive above it.
    ch(&mut a, '8');
    let before = a.traffic_rows()[a.traffic.selected].id;
    let mut newer = more;
    newer.apply(late_start(100, 1_795_600_002_000));
    update(&mut a, Action::Traffic(std::sync::Arc::new(vec![newer])));
    assert_eq!(a.traffic_rows()[a.traffic.selected].id, before);
}
