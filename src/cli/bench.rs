//! `anorag-tui bench`: the load test, headless, with `vllm bench serve`'s figures.
use crate::bench::{self, report, BenchResult, BenchTarget};
use crate::config::Config;
use crate::provider::factory;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub use super::bench_args::BenchArgs;
pub use super::bench_plans::plans;
use super::bench_run::{run_all, usage};

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

/// `--baseline FILE`: a saved result (a compare file's first run).
fn load_baseline(a: &BenchArgs) -> Result<Option<BenchResult>, String> {
    let Some(p) = &a.baseline else {
        return Ok(None);
    };
    std::fs::read_to_string(p)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
        .and_then(|v| BenchResult::from_json(&v))
        .map(Some)
        .map_err(|e| format!("--baseline {}: {e}", p.display()))
}

/// The results as text: each run's block, a sweep's table, the comparison with a second
/// route or a baseline.
fn print_text(
    a: &BenchArgs,
    first: &BenchTarget,
    a_results: &[BenchResult],
    b: Option<(&[BenchResult], &BenchTarget)>,
    baseline: Option<&BenchResult>,
) {
    for r in a_results.iter().chain(b.into_iter().flat_map(|(b, _)| b)) {
        if first.kind == crate::provider::ProviderKind::Builtin {
            eprintln!("note: the built-in route is served inside this process; client CPU includes the simulator");
        }
        println!("{}", report::summary(r));
    }
    if a_results.len() > 1 {
        println!(
            "Sweep on route {}:\n{}",
            first.route,
            report::sweep_table(a_results)
        );
        if let Some((b, t)) = b {
            println!("Sweep on route {}:\n{}", t.route, report::sweep_table(b));
        }
    }
    if let Some((b, t)) = b {
        for (x, y) in a_results.iter().zip(b) {
            println!("{}", report::compare(x, y, &first.route, &t.route));
        }
    }
    if let Some(base) = baseline {
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

/// Says each soak run's verdict; false when one failed.
fn soak_verdicts(results: &[BenchResult]) -> bool {
    let soaks: Vec<_> = results.iter().filter_map(|r| r.soak.as_ref()).collect();
    for s in &soaks {
        eprintln!("{}", s.verdict.line());
    }
    soaks.iter().all(|s| s.verdict.pass)
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
    let baseline = match load_baseline(&a) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let mut first = match target(&cfg, route).await {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    if a.soak {
        let (probe, said) = crate::supervisor::soak_probe::probe_for(&cfg, &first);
        eprintln!("[anorag] soak: server memory from {said}");
        first.memory = probe;
    }
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
        let b = b_results.as_deref().zip(second.as_ref());
        print_text(&a, &first, &a_results, b, baseline.as_ref());
    }
    if let Err(e) = super::bench_run::save(&a, &doc) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
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
    if !soak_verdicts(&a_results) {
        return ExitCode::FAILURE;
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
