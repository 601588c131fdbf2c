//! Frame render time of each pane at 200x60 (target: at most 2 ms), on a heavy but realistic
//! state: 8 GPUs and 8 routes with five minutes of history, 12 servers, a 100-turn chat with
//! an answer streaming, a load test five minutes in, and 5,000 log lines with a filter.
//!
//!   cargo bench --bench render            (figures)
//!   cargo test --benches                  (one quick pass, no figures: it still has to run)
//!
//! Two figures per pane: `frame` is a normal frame (the view rendered, diffed against the
//! previous one, the changes written as ANSI to a buffer); `repaint` forces every cell out,
//! as after a resize. Both include ratatui's diff and crossterm's encoding.
use anorag::bench::result::Series;
use anorag::bench::{Phase, Progress};
use anorag::session::{AnswerMeta, Turn};
use anorag::supervisor::engine::SupEvent;
use anorag::supervisor::{ServerStatus, State};
use anorag::telemetry::gpu::fake::FakeGpuSource;
use anorag::telemetry::gpu::GpuStatus;
use anorag::telemetry::history::Ring;
use anorag::telemetry::host::{HostSample, ServerUsage};
use anorag::telemetry::routes::{Health, RouteTable};
use anorag::telemetry::sampler::{GpuView, HostView};
use anorag::telemetry::vllm_metrics::VllmMetrics;
use anorag::tui::action::Action;
use anorag::tui::app::{App, Pane, RunningBench, PANES};
use anorag::tui::keymap::KeyMap;
use anorag::tui::update::update;
use anorag::tui::view;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Where the frames go: counted, then dropped (the cost of a real tty write is not ours).
struct Sink(Rc<Cell<usize>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const W: u16 = 200;
const H: u16 = 60;
const MINUTES: usize = 5;

fn ring(n: usize, f: impl Fn(usize) -> f64) -> Ring {
    let mut r = Ring::new(n);
    for i in 0..n {
        r.push(Some(f(i)));
    }
    r
}

fn server(i: usize) -> ServerStatus {
    let state = [
        State::Ready,
        State::Starting,
        State::Crashed,
        State::Stopped,
    ][i % 4];
    ServerStatus {
        name: format!("server{i}"),
        state,
        kind: "vllm".into(),
        pid: Some(1000 + i as i32),
        pgid: Some(1000 + i as i32),
        host: "127.0.0.1".into(),
        port: 8000 + i as u16,
        started_at: Some("2026-11-25T10:00:00Z".into()),
        uptime_s: Some(3600.0),
        ready_after_s: Some(41.0),
        exit_code: None,
        signal: (state == State::Crashed).then_some(9),
        log_path: format!("/var/lib/anorag/servers/server{i}/server.log"),
        route: Some(format!("route{}", i % 8)),
        model: Some("Qwen/Qwen2.5-7B-Instruct".into()),
        argv: vec![
            "vllm".into(),
            "serve".into(),
            "Qwen/Qwen2.5-7B-Instruct".into(),
        ],
        restarts: 0,
        message: None,
        failure: None,
        fit_warning: None,
        configured: true,
        autostart: false,
        started_unix: Some(1_795_600_000.0),
        run_id: None,
        cluster: None,
        node: None,
        job: None,
    }
}

fn progress() -> Progress {
    let secs = MINUTES * 60;
    let mut s = Series::default();
    for i in 0..secs {
        let w = (i as f64 / 9.0).sin();
        s.completed.push(40);
        s.failed.push(u32::from(i % 50 == 0));
        s.output_tokens_per_s.push(2500.0 + 300.0 * w);
        s.concurrency.push(64.0);
        s.ttft_p50_ms.push(Some(60.0 + 5.0 * w));
        s.ttft_p99_ms.push(Some(90.0 + 9.0 * w));
        s.e2el_p50_ms.push(Some(1300.0 + 20.0 * w));
        s.e2el_p99_ms.push(Some(1400.0 + 30.0 * w));
    }
    Progress {
        phase: Phase::Running,
        elapsed_s: secs as f64,
        sent: 12_064,
        completed: 12_000,
        failed: 6,
        in_flight: 64,
        planned_requests: Some(20_000),
        concurrency: Some(64),
        requests_per_s: 40.0,
        output_tokens_per_s: 2560.0,
        ttft_p50_ms: Some(61.0),
        ttft_p99_ms: Some(92.0),
        e2el_p50_ms: Some(1301.0),
        e2el_p99_ms: Some(1402.0),
        errors: [("http_503".to_string(), 6u64)].into(),
        series: s,
        e2el_bins: (0..24)
            .map(|i| (1200.0 + 10.0 * i as f64, 50 + (i * 37 % 400) as u64))
            .collect(),
        ..Progress::default()
    }
}

async fn heavy_app() -> App {
    let route_names: Vec<String> = (0..8).map(|i| format!("route{i}")).collect();
    let mut a = App::new(KeyMap::defaults(), route_names, "route0", true, 5000);
    a.now = 1_795_600_000.0;
    a.config_name = "dashboard.yaml".into();

    let samples = MINUTES * 60;
    update(
        &mut a,
        Action::Host(Box::new(HostView {
            sample: HostSample {
                cpu_pct: 37.0,
                cores: 64,
                memory_used_bytes: 300 << 30,
                memory_total_bytes: 1 << 40,
                load_1m: 12.0,
                servers: (0..12)
                    .map(|i| ServerUsage {
                        name: format!("server{i}"),
                        processes: 4,
                        cpu_pct: 95.0,
                        rss_bytes: 6 << 30,
                    })
                    .collect(),
            },
            cpu: ring(samples, |i| (i % 100) as f64),
            memory: ring(samples, |i| 0.3 + (i % 10) as f64 / 100.0),
        })),
    );

    let mut gpu = GpuView::default();
    for t in 0..samples {
        let devices = (0..8)
            .map(|d| {
                let mut dev = FakeGpuSource::device(
                    d,
                    60.0 + d as f64,
                    ((t + d as usize) % 100) as u32,
                    1000 + d,
                );
                dev.processes[0].server = Some(format!("server{d}"));
                dev
            })
            .collect();
        gpu.record(vec![FakeGpuSource::sample(GpuStatus::Ok, devices)]);
    }
    update(&mut a, Action::Gpu(Box::new(gpu)));

    for i in 0..12 {
        update(&mut a, Action::Sup(SupEvent::Status(Box::new(server(i)))));
    }

    let mut yaml = String::from("llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n");
    for i in 0..8 {
        yaml.push_str(&format!(
            "      route{i}: {{base_url: http://10.0.0.{i}:8000/v1, model: qwen2_5_7b}}\n"
        ));
    }
    let cfg = anorag::config::load_str(&yaml, "bench.yaml").expect("valid config");
    let router = anorag::provider::factory::build(&cfg)
        .await
        .expect("router");
    let mut table = RouteTable::from_router(&router);
    for (i, r) in table.routes.iter_mut().enumerate() {
        for t in &mut r.targets {
            t.state = if i == 3 { Health::Down } else { Health::Up };
            t.latency_history = ring(samples, |k| 0.5 + (k % 7) as f64 / 10.0);
            t.running_history = ring(samples, |k| (k % 60) as f64);
            t.waiting_history = ring(samples, |k| (k % 5) as f64);
            t.kv_history = ring(samples, |k| (k % 100) as f64 / 100.0);
            t.gen_tps_history = ring(samples, |k| 2000.0 + (k % 500) as f64);
            t.latency_ms = t.latency_history.last();
            t.metrics = Some(VllmMetrics {
                num_requests_running: Some(48.0),
                num_requests_waiting: Some(3.0),
                kv_cache_usage: Some(0.61),
                generation_tokens_per_s: Some(2400.0),
                ttft_p50_ms: Some(58.0),
                ..VllmMetrics::default()
            });
        }
    }
    update(&mut a, Action::Routes(Box::new(table)));

    let answer = "A KV cache keeps the keys and values of earlier tokens so that each new token \
                  attends to them without computing them again; vLLM pages it in blocks. "
        .repeat(6);
    for i in 0..100 {
        a.chat.conv.turns.push(Turn {
            user: format!("question {i}: how does paged attention split the cache?"),
            answer: answer.clone(),
            meta: AnswerMeta {
                route: "route0".into(),
                ttft_ms: Some(61.0),
                tokens_per_s: Some(95.0),
                ..AnswerMeta::default()
            },
        });
    }

    a.bench.running = Some(RunningBench {
        id: 1,
        route: "route0".into(),
        progress: progress(),
        then: None,
    });

    let lines: Vec<String> = (0..5000)
        .map(|i| {
            format!(
                "(APIServer pid=4242) INFO 11-25 10:{:02}:{:02} [loggers.py:123] Engine 000: Avg prompt \
                 throughput: {}.0 tokens/s, Avg generation throughput: 2400.0 tokens/s, Running: 48 \
                 reqs, Waiting: 3 reqs, GPU KV cache usage: 61.0%, Prefix cache hit rate: 12.5%",
                i / 60 % 60,
                i % 60,
                i
            )
        })
        .collect();
    update(
        &mut a,
        Action::Sup(SupEvent::Logs {
            name: "server0".into(),
            lines,
            lost: 0,
        }),
    );
    a.filters.insert(Pane::Logs, "KV cache".into());
    a
}

struct Figures {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn measure(mut once: impl FnMut(), n: usize) -> Figures {
    for _ in 0..n / 10 {
        once();
    }
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            once();
            s.elapsed()
        })
        .collect();
    t.sort();
    Figures {
        mean: t.iter().sum::<Duration>() / n as u32,
        p50: t[n / 2],
        p99: t[n * 99 / 100],
        max: t[n - 1],
    }
}

fn us(d: Duration) -> String {
    format!("{:8.0}", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo test --benches` passes no `--bench`: one quick pass, so the harness stays built.
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 1000 } else { 3 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut app = rt.block_on(heavy_app());
    let area = Rect::new(0, 0, W, H);
    let written = Rc::new(Cell::new(0usize));
    let mut term = Terminal::with_options(
        CrosstermBackend::new(Sink(written.clone())),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )
    .expect("terminal");
    if full {
        println!("frame render time at {W}x{H}, microseconds over {n} frames each");
        println!(
            "{:<8} {:>8} {:>8} {:>8} {:>8}   {:>8} {:>8} {:>10}",
            "pane", "mean", "p50", "p99", "max", "repaint", "p99", "bytes out"
        );
    }
    let mut worst = Duration::ZERO;
    for pane in PANES {
        app.pane = pane;
        // A normal frame: something moved (the clock here), the rest is diffed away.
        let mut tick = 0.0;
        let frame = measure(
            || {
                tick += 1.0;
                app.now = 1_795_600_000.0 + tick * 60.0;
                term.draw(|f| view::render(f, &app)).expect("draw");
            },
            n,
        );
        let mut bytes = 0;
        let repaint = measure(
            || {
                written.set(0);
                term.resize(area).expect("resize");
                term.draw(|f| view::render(f, &app)).expect("draw");
                bytes = written.get();
            },
            n,
        );
        worst = worst.max(frame.p99);
        if full {
            println!(
                "{:<8} {} {} {} {}   {} {} {:>10}",
                pane.title(),
                us(frame.mean),
                us(frame.p50),
                us(frame.p99),
                us(frame.max),
                us(repaint.mean),
                us(repaint.p99),
                bytes
            );
        }
    }
    if full {
        println!(
            "worst frame p99: {:.2} ms (target 2 ms)",
            worst.as_secs_f64() * 1e3
        );
    }
}
