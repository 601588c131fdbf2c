//! `anorag-tui bench`: the load test, headless, with `vllm bench serve`'s figures.
use crate::bench::{self, report, BenchResult, BenchTarget, Control, Plan};
use crate::config::Config;
use crate::input;
use crate::provider::factory;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Route to load (default: the config's default route). Its own servers only: no
    /// retries, no fallback.
    #[arg(long)]
    pub route: Option<String>,
    #[command(flatten)]
    pub adhoc: super::chat::AdhocTarget,
    /// Closed loop: keep N requests in flight (default 1). With --rate: at most N in flight.
    #[arg(long, value_parser = input::concurrency)]
    pub concurrency: Option<usize>,
    /// Open loop: requests per second, sent at absolute target times.
    #[arg(long, value_parser = input::rate)]
    pub rate: Option<f64>,
    /// Gamma shape of the gaps between arrivals: 1 is Poisson, less is burstier, inf is even.
    #[arg(long, default_value_t = 1.0, value_parser = input::burstiness)]
    pub burstiness: f64,
    /// With --rate: at most N in flight (requests wait in the client for a slot).
    #[arg(long, value_parser = input::concurrency)]
    pub max_concurrency: Option<usize>,
    /// Stop after N measured requests (default 100 when --duration is not given).
    #[arg(long, alias = "num-prompts", value_parser = input::count(1, u64::MAX))]
    pub requests: Option<u64>,
    /// Stop sending after S seconds, then wait for the requests in flight.
    #[arg(long, value_parser = input::seconds(0.001))]
    pub duration: Option<f64>,
    /// Requests sent and awaited first, left out of every figure.
    #[arg(long, alias = "num-warmups", default_value_t = 0)]
    pub warmup: u64,
    /// Steps: `concurrency=1,2,4,8`, `rate=1,2,5,10`, or a bare list (concurrencies, or
    /// rates when --rate is given). Each step is a full run, reported on its own.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Open loop whose rate ramps over the requests from --ramp-up-start-rps to
    /// --ramp-up-end-rps: `linear` or `exponential` (vLLM's semantics; needs --requests).
    #[arg(long, requires_all = ["ramp_up_start_rps", "ramp_up_end_rps"], conflicts_with_all = ["rate", "sweep"])]
    pub ramp_up_strategy: Option<String>,
    #[arg(long, value_parser = input::rate)]
    pub ramp_up_start_rps: Option<f64>,
    #[arg(long, value_parser = input::rate)]
    pub ramp_up_end_rps: Option<f64>,
    /// Find the highest `rate` or `concurrency` that meets --slo: each probe is a full run
    /// (--requests or --duration each); doubles until a probe misses, then bisects.
    #[arg(long, requires = "slo", conflicts_with_all = ["sweep", "compare"])]
    pub find_max: Option<String>,
    /// Limits for --find-max, e.g. "p99_ttft_ms<=500,p99_tpot_ms<=50" (the result's keys).
    #[arg(long)]
    pub slo: Option<String>,
    /// Stop --find-max when the bracket is this narrow (requests/s; default 5% of the answer
    /// for a rate, 1 for a concurrency).
    #[arg(long, value_parser = input::rate)]
    pub find_max_tolerance: Option<f64>,
    /// Service-level objectives for goodput, in ms: `ttft:500,tpot:50,e2el:2000`.
    #[arg(long)]
    pub goodput: Option<String>,
    /// `random` (default), `jsonl` or `sharegpt`.
    #[arg(long, default_value = "random")]
    pub dataset_name: String,
    /// The prompt file for `jsonl` and `sharegpt`.
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    #[arg(long, alias = "random-input-len", default_value_t = 1024)]
    pub input_len: u32,
    /// A tokenizer.json (or a model folder with one) for exact prompt lengths on servers
    /// without /tokenize (OpenAI, Ollama) or offline; vLLM's own /tokenize is used otherwise.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// --dataset-name multi-turn: turns per conversation (--requests counts conversations).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub turns: u32,
    /// --dataset-name multi-turn: seconds between an answer and the next question.
    #[arg(long, default_value_t = 0.0, value_parser = input::seconds(0.0))]
    pub think_time: f64,
    /// --dataset-name prefix: tokens of each shared prefix.
    #[arg(long, alias = "prefix-repetition-prefix-len", default_value_t = 256)]
    pub prefix_len: u32,
    /// --dataset-name prefix: each request's own tokens after its prefix.
    #[arg(long, alias = "prefix-repetition-suffix-len", default_value_t = 256)]
    pub suffix_len: u32,
    /// --dataset-name prefix: how many different prefixes the requests share.
    #[arg(long, alias = "prefix-repetition-num-prefixes", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub prefix_groups: u32,
    /// Seconds between scrapes of a vLLM route's /metrics during the run (queue, KV cache,
    /// preemptions, server tok/s, and the server's own TTFT and E2E); 0 turns them off.
    #[arg(long, default_value_t = 0.5, value_parser = input::seconds(0.0))]
    pub server_metrics_interval: f64,
    /// The HTTP client that streams the answers: `lean` (a plain HTTP/1.1 client that reads
    /// only what the figures need, used for SSE over http:// without a proxy; reqwest
    /// elsewhere) or `reqwest` everywhere, to compare the two.
    #[arg(long, default_value = "lean", value_parser = ["lean", "reqwest"])]
    pub http_client: String,
    /// Output tokens asked for (with ignore_eos where the server supports it). For files:
    /// overrides each prompt's own length.
    #[arg(long, alias = "random-output-len")]
    pub output_len: Option<u32>,
    /// Random lengths drawn within ±ratio of --input-len / --output-len.
    #[arg(long, alias = "random-range-ratio", default_value_t = 0.0, value_parser = input::fraction)]
    pub range_ratio: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_parser = input::temperature)]
    pub temperature: Option<f32>,
    /// Seconds per request, from sending to the end of the answer.
    #[arg(long, default_value_t = 600.0, value_parser = input::seconds(0.001))]
    pub timeout: f64,
    /// Longest gap, in seconds, between two events once the answer has started.
    #[arg(long, default_value_t = 120.0, value_parser = input::seconds(0.001))]
    pub idle_timeout: f64,
    /// One JSON object (a sweep: `{"steps": [...]}`) on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub save_result: Option<PathBuf>,
    /// Per-request arrays in the saved result (input/output lengths, TTFTs, ITLs, ...).
    #[arg(long)]
    pub save_detailed: bool,
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Run the same workload on a second route and show both side by side.
    #[arg(long)]
    pub compare: Option<String>,
    /// Compare against a saved result (ours or `vllm bench serve`'s).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// No progress bar (it only shows when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

pub(super) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub use super::bench_plans::plans;

/// The `tokenizer.json` of the local model a profile serves on `route`, if any.
fn local_tokenizer(cfg: &Config, route: &str) -> Option<PathBuf> {
    cfg.servers
        .values()
        .filter(|p| p.route.as_deref() == Some(route))
        .filter_map(|p| p.model.as_deref())
        .filter_map(|m| crate::supervisor::launch::model_path(m, &cfg.base_dir))
        .map(|d| d.join("tokenizer.json"))
        .find(|f| f.is_file())
}

async fn target(cfg: &Config, route: Option<&str>) -> Result<BenchTarget, String> {
    let router = Arc::new(factory::build(cfg).await.map_err(|e| e.to_string())?);
    BenchTarget::from_router(router, route)
}

pub async fn run(explicit: Option<&Path>, a: BenchArgs) -> ExitCode {
    let cfg = match super::chat::adhoc_config(&a.adhoc).await {
        Ok(Some(c)) => c,
        Ok(None) => or_exit!(super::config_or_exit(explicit)),
        Err(msg) => return usage(msg),
    };
    let plans = match plans(&a) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let route = if a.adhoc.provider.is_some() {
        None
    } else {
        a.route.as_deref()
    };
    let baseline = match &a.baseline {
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
            .and_then(|v| BenchResult::from_json(&v))
        {
            Ok(b) => Some(b),
            Err(e) => return usage(format!("--baseline {}: {e}", p.display())),
        },
        None => None,
    };
    let first = match target(&cfg, route).await {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    if let Some(knob) = &a.find_max {
        return super::find_max::run(&a, knob, first, plans).await;
    }
    // A route without /tokenize whose profile names a local model: that model's tokenizer.
    let mut plans = plans;
    if a.tokenizer.is_none() && first.kind != crate::provider::ProviderKind::VllmOpenai {
        if let Some(t) = local_tokenizer(&cfg, &first.route) {
            eprintln!("[anorag] exact prompt lengths from {}", t.display());
            for p in &mut plans {
                p.tokenizer = Some(t.clone());
            }
        }
    }
    let second = match &a.compare {
        Some(r) => match target(&cfg, Some(r)).await {
            Ok(t) => Some(t),
            Err(e) => return usage(format!("--compare: {e}")),
        },
        None => None,
    };
    let a_results = match run_all(&a, first.clone(), plans.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let b_results = match second.clone() {
        Some(t) => match run_all(&a, t, plans).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let as_json = |rs: &[BenchResult]| {
        if rs.len() == 1 {
            rs[0].to_json()
        } else {
            bench::result::sweep_json(rs)
        }
    };
    let doc = match &b_results {
        Some(b) => serde_json::json!({ "a": as_json(&a_results), "b": as_json(b) }),
        None => as_json(&a_results),
    };
    for r in a_results.iter().chain(b_results.iter().flatten()) {
        if let Some(w) = r.prompt_tokens.as_ref().and_then(|p| p.warning.as_ref()) {
            eprintln!("warning: route {}: {w}", r.label);
            break;
        }
    }
    if a.json {
        println!("{doc}");
    } else {
        for r in a_results.iter().chain(b_results.iter().flatten()) {
            if first.kind == crate::provider::ProviderKind::Builtin {
                eprintln!("note: the built-in route is served inside this process; client CPU includes the simulator");
            }
            println!("{}", report::summary(r));
        }
        if a_results.len() > 1 {
            println!(
                "Sweep on route {}:\n{}",
                first.route,
                report::sweep_table(&a_results)
            );
            if let (Some(b), Some(t)) = (&b_results, &second) {
                println!("Sweep on route {}:\n{}", t.route, report::sweep_table(b));
            }
        }
        if let (Some(b), Some(t)) = (&b_results, &second) {
            for (x, y) in a_results.iter().zip(b) {
                println!("{}", report::compare(x, y, &first.route, &t.route));
            }
        }
        if let Some(base) = &baseline {
            let name = a
                .baseline
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            println!(
                "{}",
                report::compare(
                    base,
                    &a_results[0],
                    &format!("baseline {name}"),
                    &first.route
                )
            );
        }
    }
    if let Some(p) = &a.save_result {
        if let Err(e) = std::fs::write(p, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
            eprintln!("error: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        eprintln!("saved {}", p.display());
    }
    if let Some(p) = &a.csv {
        let all: Vec<BenchResult> = a_results
            .iter()
            .chain(b_results.iter().flatten())
            .cloned()
            .collect();
        if let Err(e) = std::fs::write(p, report::csv(&all)) {
            eprintln!("error: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    let none_ok = a_results
        .iter()
        .chain(b_results.iter().flatten())
        .all(|r| r.completed == 0);
    if none_ok {
        eprintln!("error: no request succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Runs the plans with a progress bar on stderr (when it is a terminal); Ctrl-C stops the
/// run and still reports what was measured.
pub(super) async fn run_all(
    a: &BenchArgs,
    target: BenchTarget,
    plans: Vec<Plan>,
) -> Result<Vec<BenchResult>, String> {
    let steps = plans.len();
    let mut h = bench::spawn(target.clone(), plans);
    let bar = (std::io::stderr().is_terminal() && !a.no_progress).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut ctrl_c = false;
    loop {
        tokio::select! {
            r = &mut h.done => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return r.map_err(|e| e.to_string())?;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(b) = &bar {
                    let p = h.progress.borrow().clone();
                    let step = *h.step.borrow();
                    b.set_prefix(format!("{} {}/{} {:?}", target.route, step + 1, steps, p.phase).to_lowercase());
                    match (p.planned_requests, p.planned_duration_s) {
                        (Some(n), _) => {
                            b.set_length(n);
                            b.set_position(p.completed + p.failed);
                        }
                        (None, Some(d)) => {
                            b.set_length(d as u64);
                            b.set_position(p.elapsed_s.min(d) as u64);
                        }
                        _ => {}
                    }
                    let errors: u64 = p.errors.values().sum();
                    b.set_message(format!(
                        "{:.1} req/s · TTFT p50 {} · {} in flight · {errors} errors",
                        p.requests_per_s,
                        crate::format::opt(p.ttft_p50_ms, crate::format::ms),
                        p.in_flight
                    ));
                    b.tick();
                }
            }
            _ = tokio::signal::ctrl_c(), if !ctrl_c => {
                ctrl_c = true;
                eprintln!("stopping: the requests in flight are counted as cancelled");
                let _ = h.control.send(Control::Cancel).await;
            }
        }
    }
}
