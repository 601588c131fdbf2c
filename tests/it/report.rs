//! Reports: every kind of saved result (made here by the real `bench` against the simulator,
//! and `vllm bench serve`'s own files) renders to one HTML file whose charts carry data; each
//! opens in a real headless Chromium with no console message and no network request, and its
//! screenshot is not blank; the SVG's structure is pinned by a snapshot; 10,000 requests stay
//! under 1 MiB.
use crate::common;
use anorag::report::{self, load};
use anorag::sim::{self, Flavor, SimConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_anorag-tui");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vllm-0.32")
        .join(name)
}

/// Simulators on a runtime of their own (the CLI runs as a child process): `small` with a
/// capacity of 8 so that a search finds a knee, `large`, and `fast` with no delay.
struct Sims {
    urls: Vec<String>,
}

fn sims() -> &'static Sims {
    static S: OnceLock<Sims> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut urls = Vec::new();
                for (running, ttft, itl) in [(Some(8), 30, 4), (Some(16), 20, 4), (None, 0, 0)] {
                    let mut c = SimConfig::new(Flavor::Vllm);
                    c.ttft = Duration::from_millis(ttft);
                    c.itl = Duration::from_millis(itl);
                    c.tokens = 24;
                    c.max_running = running;
                    let s = sim::start(c).await.unwrap();
                    urls.push(s.base_url());
                    std::mem::forget(s);
                }
                tx.send(urls).unwrap();
                std::future::pending::<()>().await;
            });
        });
        Sims {
            urls: rx.recv().unwrap(),
        }
    })
}

/// Runs `anorag-tui bench ARGS --save-result DIR/NAME.json` on route `small`.
fn bench(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    bench_on(dir, "small", name, args)
}

/// The same on another of the simulators' routes.
fn bench_on(dir: &Path, route: &str, name: &str, args: &[&str]) -> PathBuf {
    let s = sims();
    let cfg = dir.join("dashboard.yaml");
    if !cfg.exists() {
        std::fs::write(
            &cfg,
            format!(
                "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      small: {{base_url: \"{}\", model: qwen2_5_0_5b}}\n      large: {{base_url: \"{}\", model: qwen2_5_0_5b}}\n      fast: {{base_url: \"{}\", model: qwen2_5_0_5b}}\n",
                s.urls[0], s.urls[1], s.urls[2]
            ),
        )
        .unwrap();
    }
    let out = dir.join(format!("{name}.json"));
    let o = Command::new(BIN)
        .current_dir(dir)
        .args([
            "bench",
            "--config",
            "dashboard.yaml",
            "--route",
            route,
            "--no-progress",
        ])
        .args([
            "--input-len",
            "16",
            "--output-len",
            "12",
            "--server-metrics-interval",
            "0.2",
        ])
        .args(args)
        .arg("--save-result")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        out.exists(),
        "bench {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The saved results the report tests read, each made by `anorag-tui bench ARGS` on route
/// `small` (`--compare large` adds the other simulator).
const RUNS: [(&str, &[&str]); 8] = [
    (
        "run",
        &["--requests", "80", "--concurrency", "4", "--save-detailed"],
    ),
    (
        "sweep",
        &[
            "--sweep",
            "concurrency=1,4,16",
            "--requests",
            "48",
            "--goodput",
            "ttft:50",
        ],
    ),
    (
        "find_max",
        &[
            "--find-max",
            "concurrency",
            "--slo",
            "p99_ttft_ms<=60",
            "--requests",
            "64",
        ],
    ),
    (
        "compare",
        &[
            "--compare",
            "large",
            "--requests",
            "60",
            "--concurrency",
            "12",
        ],
    ),
    (
        "compare_sweep",
        &[
            "--compare",
            "large",
            "--sweep",
            "concurrency=2,8,24",
            "--requests",
            "48",
        ],
    ),
    (
        "soak",
        &[
            "--soak",
            "--duration",
            "4",
            "--soak-window",
            "1s",
            "--concurrency",
            "2",
        ],
    ),
    (
        "multi_turn",
        &[
            "--dataset-name",
            "multi-turn",
            "--turns",
            "3",
            "--requests",
            "6",
            "--concurrency",
            "3",
        ],
    ),
    (
        "open_capped",
        &[
            "--rate",
            "100",
            "--max-concurrency",
            "2",
            "--requests",
            "30",
            "--save-detailed",
        ],
    ),
];

/// Every kind of result, made once: (kind, file, the chart ids its report must have).
fn results() -> &'static Vec<(&'static str, PathBuf, Vec<&'static str>)> {
    static R: OnceLock<Vec<(&'static str, PathBuf, Vec<&'static str>)>> = OnceLock::new();
    R.get_or_init(|| {
        let dir = scratch("results");
        let over_time = [
            "latency-over-time",
            "requests-over-time",
            "tokens-over-time",
            "concurrency-over-time",
        ];
        let dists = [
            "hist-ttft",
            "cdf-ttft",
            "hist-tpot",
            "cdf-tpot",
            "hist-itl",
            "cdf-itl",
            "hist-e2el",
            "cdf-e2el",
        ];
        let steps = [
            "ttft-vs-throughput",
            "tpot-vs-throughput",
            "e2el-vs-throughput",
            "goodput-vs-load",
            "pareto",
            "status-per-step",
        ];
        let mut run_ids: Vec<&str> = over_time.iter().chain(&dists).copied().collect();
        run_ids.push("timeline");
        let runs = RUNS;
        // The runs wait on the simulators' delays far more than they use a core: made a few
        // at a time (not all at once: the other tests beside them keep their cores), they
        // take well under the sum of their times (about 30 s one by one). The search goes
        // first, alone: its knee is the simulator's capacity, which the others' load would
        // take.
        let searched = bench(&dir, runs[2].0, runs[2].1);
        let others: Vec<_> = runs.iter().filter(|(n, _)| *n != runs[2].0).collect();
        let mut files: Vec<PathBuf> = Vec::new();
        for wave in others.chunks(4) {
            files.extend(std::thread::scope(|sc| {
                let made: Vec<_> = wave
                    .iter()
                    .map(|(name, args)| {
                        let dir = &dir;
                        sc.spawn(move || bench(dir, name, args))
                    })
                    .collect();
                made.into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            }));
        }
        files.insert(2, searched);
        let made = |name: &str| -> PathBuf {
            let at = runs.iter().position(|(n, _)| *n == name).unwrap();
            files[at].clone()
        };
        vec![
            ("run", made("run"), run_ids),
            ("sweep", made("sweep"), steps.to_vec()),
            ("find-max", made("find_max"), steps.to_vec()),
            (
                "comparison",
                made("compare"),
                vec![
                    "cmp-ttft-over-time",
                    "cmp-tokens-over-time",
                    "cmp-cdf-ttft",
                    "cmp-cdf-e2el",
                    "d1-latency-over-time",
                    "d2-hist-ttft",
                ],
            ),
            (
                "compared sweeps",
                made("compare_sweep"),
                vec![
                    "cmp-ttft-vs-throughput",
                    "cmp-e2el-vs-throughput",
                    "cmp-pareto",
                    "d1-pareto",
                    "d2-goodput-vs-load",
                ],
            ),
            (
                "soak",
                made("soak"),
                vec![
                    "soak-latency",
                    "soak-throughput",
                    "latency-over-time",
                    "cdf-ttft",
                ],
            ),
            (
                "multi-turn",
                made("multi_turn"),
                vec!["turn-ttft", "turn-prompt", "latency-over-time"],
            ),
            (
                "open loop, capped",
                made("open_capped"),
                vec!["timeline", "requests-over-time"],
            ),
            (
                "vllm bench serve",
                fixture("bench_serve.json"),
                vec!["cdf-ttft", "cdf-tpot", "cdf-itl", "hist-e2el"],
            ),
            (
                "vllm bench serve --save-detailed",
                fixture("bench_serve_detailed.json"),
                vec!["hist-ttft", "hist-itl", "cdf-tpot", "hist-e2el", "timeline"],
            ),
        ]
    })
}

/// A folder of this test process in Cargo's scratch folder for integration tests (under
/// `target/`); earlier processes' folders are removed the first time.
fn scratch(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tests");
    let mine = root.join(std::process::id().to_string());
    SWEPT.call_once(|| {
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if e.path() != mine {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    let d = mine.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `anorag-tui report FILE` into the scratch folder (the fixtures stay as they are).
fn render(file: &Path) -> (PathBuf, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stem = file.file_stem().unwrap().to_string_lossy();
    let out = scratch("pages").join(format!("{stem}-{n}.html"));
    let o = Command::new(BIN)
        .arg("report")
        .arg(file)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "report {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html)
}

/// The `<svg>` element with this chart id, if the page has it.
fn svg_of<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<svg id=\"chart-{id}\""))?;
    let end = html[start..].find("</svg>")? + start;
    Some(&html[start..end])
}

/// A series is drawn when the chart holds one of the palette's colours (axes are black,
/// grids light grey).
fn has_data(svg: &str) -> bool {
    report::chart::PALETTE.iter().take(6).any(|c| {
        let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        svg.contains(&hex)
    })
}

#[test]
fn every_kind_of_result_renders_with_its_charts() {
    for (kind, file, ids) in results() {
        let (_, html) = render(file);
        for id in ids {
            let svg = svg_of(&html, id).unwrap_or_else(|| panic!("{kind}: no chart `{id}`"));
            assert!(has_data(svg), "{kind}: chart `{id}` has no data drawn");
            assert!(svg.contains("<text"), "{kind}: chart `{id}` has no labels");
        }
        assert!(!html.contains("<script"), "{kind}: a script");
        assert!(
            !html.contains("http://") || !html.contains("src=\"http"),
            "{kind}: a remote source"
        );
        assert!(
            html.contains("Content-Security-Policy"),
            "{kind}: no content policy"
        );
    }
}

#[test]
fn a_search_report_shows_its_answer_and_knee_and_a_comparison_its_ratios() {
    let r = results();
    let (_, fm) = render(&r[2].1);
    assert!(
        fm.contains("highest concurrency that meets the SLO") || fm.contains("no knee found"),
        "answer line"
    );
    let ttft = svg_of(&fm, "ttft-vs-throughput").unwrap();
    assert!(
        ttft.contains("SLO p99_ttft_ms"),
        "the SLO line is named in the legend"
    );
    assert!(fm.contains("table-probes"));
    if fm.contains("highest concurrency that meets the SLO") {
        assert!(ttft.contains("knee"), "the knee is marked");
    }
    // A sweep's goodput limit is its SLO line; its steps have a goodput.
    let (_, sw) = render(&r[1].1);
    assert!(svg_of(&sw, "ttft-vs-throughput")
        .unwrap()
        .contains("SLO goodput_ttft_ms"));
    assert!(svg_of(&sw, "goodput-vs-load")
        .unwrap()
        .contains("goodput (requests within the SLO)"));
    // Requests that waited for a slot show the wait on the timeline.
    let (_, open) = render(&r[7].1);
    assert!(svg_of(&open, "timeline")
        .unwrap()
        .contains("waiting for a slot"));
    let (_, cmp) = render(&r[3].1);
    assert!(cmp.contains("id=\"table-cmp-ratios\""));
    assert!(cmp.contains("large / small"), "each run against the first");
}

#[test]
fn bad_files_are_named_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"duration\": 1,\n  oops\n}").unwrap();
    let e = load::read(&bad).unwrap_err();
    assert!(e.starts_with(&format!("{}:3:3:", bad.display())), "{e}");
    let other = dir.path().join("other.json");
    std::fs::write(&other, "{\"hello\": 1}").unwrap();
    let e = load::read(&other).unwrap_err();
    assert!(
        e.contains("other.json") && e.contains("not a benchmark result"),
        "{e}"
    );
    let o = Command::new(BIN)
        .arg("report")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other.json"));
    let o = Command::new(BIN)
        .arg("report")
        .arg(&other)
        .args(["--gpus", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--gpus"));
}

#[test]
fn png_format_writes_each_chart_as_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    let o = Command::new(BIN)
        .arg("report")
        .arg(fixture("bench_serve_detailed.json"))
        .arg("-o")
        .arg(&out)
        .args(["--format", "png"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pngs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    assert!(
        pngs.iter().any(|p| p.ends_with("r-hist-ttft.png")),
        "{pngs:?}"
    );
    for p in &pngs {
        let (w, h, px) = decode(&std::fs::read(p).unwrap());
        assert!(w > 100 && h > 100);
        assert!(ink(&px) > 0.01, "{}: blank", p.display());
    }
}

/// 10,000 requests with every per-request array saved make a report under 1 MiB.
#[test]
fn ten_thousand_requests_stay_under_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let file = bench_on(
        dir.path(),
        "fast",
        "big",
        &[
            "--requests",
            "10000",
            "--concurrency",
            "64",
            "--save-detailed",
        ],
    );
    let doc = load::read(&file).unwrap();
    assert_eq!(doc.runs()[0].f("completed"), Some(10_000.0));
    let (_, html) = render(&file);
    println!("report of 10,000 requests: {} bytes", html.len());
    assert!(html.len() < 1 << 20, "{} bytes", html.len());
    assert!(svg_of(&html, "timeline").is_some());
}

/// The chart's structure for a fixed result: axes, series, legend, labels.
#[test]
fn svg_structure_snapshot() {
    let doc = load::read(&fixture("bench_serve_detailed.json")).unwrap();
    let page = report::build(&[doc], &report::Options::default());
    let mut out = String::new();
    for c in page.charts() {
        let svg = report::render::svg(c).unwrap();
        let count = |tag: &str| svg.matches(&format!("<{tag}")).count();
        let mut texts: Vec<String> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| {
                Some(
                    t.split_once('>')?
                        .1
                        .split_once("</text>")?
                        .0
                        .trim()
                        .to_string(),
                )
            })
            .collect();
        texts.dedup();
        out.push_str(&format!(
            "{}: \"{}\"; series {:?}; polylines {}, rects {}, circles {}\n  text: {}\n",
            c.id,
            c.title,
            c.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            count("polyline"),
            count("rect"),
            count("circle"),
            texts.join(" | ")
        ));
    }
    insta::assert_snapshot!(out);
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(ch)
        .map(|p| {
            if ch >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0], p[0], p[0]]
            }
        })
        .collect();
    (info.width, info.height, px)
}

/// The share of pixels that are not near white.
fn ink(px: &[[u8; 3]]) -> f64 {
    px.iter().filter(|p| p.iter().any(|c| *c < 200)).count() as f64 / px.len().max(1) as f64
}

/// The share of pixels in a strong colour (series, not text or grid).
fn coloured(px: &[[u8; 3]]) -> f64 {
    let strong = |p: &&[u8; 3]| {
        let (hi, lo) = (p.iter().max().unwrap_or(&0), p.iter().min().unwrap_or(&0));
        hi - lo > 80
    };
    px.iter().filter(strong).count() as f64 / px.len().max(1) as f64
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(b))
                .find(|p| p.is_file())
        })
}

/// What a real browser did with a page: its DOM after load, its console, every request that
/// left it (through a proxy that answers none), and a screenshot.
struct Browsed {
    dom: String,
    console: Vec<String>,
    requests: Vec<String>,
    screenshot: Vec<u8>,
}

/// The browser's own traffic (updates, time, accounts), not the page's.
const BROWSER_HOSTS: [&str; 4] = ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"];

fn browse(browser: &Path, page: &Path) -> Browsed {
    use std::io::{BufRead, BufReader, Write};
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in proxy.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&s).read_line(&mut line);
            let _ = (&s).write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            seen2.lock().unwrap().push(line.trim().to_string());
        }
    });
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("shot.png");
    let run = |extra: &[String]| -> (String, String) {
        let mut cmd = Command::new(browser);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--proxy-bypass-list=<-loopback>",
            "--window-size=1400,2400",
        ])
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
        let o = cmd.output().unwrap();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // One load of the page gives both its DOM and its picture.
    let (dom, log) = run(&[
        "--dump-dom".into(),
        format!("--screenshot={}", shot.display()),
    ]);
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Refused to"))
        .map(String::from)
        .collect();
    let requests = seen
        .lock()
        .unwrap()
        .iter()
        // A connection that sent nothing (Chromium opens spare ones to its proxy) asked for
        // nothing.
        .filter(|r| !r.is_empty())
        .filter(|r| {
            !BROWSER_HOSTS
                .iter()
                .any(|h| r.contains(&format!("{h}:")) || r.contains(&format!("{h}/")))
        })
        .cloned()
        .collect();
    Browsed {
        dom,
        console,
        requests,
        screenshot: std::fs::read(&shot).unwrap_or_default(),
    }
}

/// Each report in a real headless Chromium: no console message, no request off the page, each
/// expected chart in the loaded DOM with data, a screenshot that is not blank. A page built to
/// fail (a script that logs, an image from the network) shows the checks can see both.
#[test]
fn reports_open_offline_in_a_real_browser() {
    let Some(browser) = chromium() else {
        common::skipped(
            "reports_open_offline_in_a_real_browser",
            "no chromium on PATH (Debian's `chromium`; .ci/run installs it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>x</p><img src=\"http://example.com/a.png\"><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let b = browse(&browser, &bad);
    assert!(
        b.console.iter().any(|l| l.contains("boom")),
        "the console is read: {:?}",
        b.console
    );
    assert!(
        b.requests.iter().any(|r| r.contains("example.com")),
        "requests are seen: {:?}",
        b.requests
    );
    for (kind, file, ids) in results() {
        let (page, _) = render(file);
        let b = browse(&browser, &page);
        assert!(b.console.is_empty(), "{kind}: console: {:?}", b.console);
        assert!(b.requests.is_empty(), "{kind}: network: {:?}", b.requests);
        for id in ids {
            let svg = svg_of(&b.dom, id)
                .unwrap_or_else(|| panic!("{kind}: the browser's DOM has no chart `{id}`"));
            assert!(has_data(svg), "{kind}: `{id}` drew no data");
        }
        let (w, h, px) = decode(&b.screenshot);
        assert!(w >= 1000 && h >= 1000, "{kind}: screenshot {w}x{h}");
        let (share, colour) = (ink(&px), coloured(&px));
        assert!(
            share > 0.005,
            "{kind}: the screenshot is blank ({share:.4} inked)"
        );
        assert!(
            colour > 0.0005,
            "{kind}: the screenshot shows no series ({colour:.5} coloured)"
        );
    }
}
