//! Running a bench's plans from the command line, for a single run and for a find-max search.
use super::bench_args::BenchArgs;
use crate::bench::{self, BenchResult, BenchTarget, Control, Plan};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

pub(super) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
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
    let mut windows_shown = 0;
    loop {
        tokio::select! {
            r = &mut h.done => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                let results = r.map_err(|e| e.to_string())??;
                // The last window closes as the run ends: shown here, after the others.
                for s in results.iter().filter_map(|r| r.soak.as_ref()) {
                    for w in s.windows.iter().skip(windows_shown) {
                        eprintln!("{}", crate::bench::soak::window_line(w, s.windows.first()));
                    }
                }
                return Ok(results);
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                // A soak run's windows, each as it closes, with its drift from the first.
                let closed = h.progress.borrow().soak.clone();
                for w in closed.iter().skip(windows_shown) {
                    let line = crate::bench::soak::window_line(w, closed.first());
                    match &bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                windows_shown = windows_shown.max(closed.len());
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

/// `--save-result FILE` (and `--report`): the document as JSON, and its report beside it.
pub fn save(a: &super::bench_args::BenchArgs, doc: &serde_json::Value) -> Result<(), String> {
    let Some(p) = &a.save_result else {
        return Ok(());
    };
    std::fs::write(p, serde_json::to_string_pretty(doc).unwrap_or_default())
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    eprintln!("saved {}", p.display());
    if a.report {
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let d = crate::report::load::parse(&name, doc.clone())?;
        let out = crate::report::beside(p);
        crate::report::write_docs(&[d], std::slice::from_ref(p), &out, false, None)?;
        eprintln!("report {}", out.display());
    }
    Ok(())
}
