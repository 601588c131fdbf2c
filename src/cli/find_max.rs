//! `bench --find-max rate|concurrency --slo ...`: the SLO search driven from the command line,
//! one full measured run per probe (the search itself is `bench::find_max`).
use super::bench::{run_all, usage, BenchArgs};
use crate::bench::{self, BenchResult, BenchTarget, Load, Plan};
use std::process::ExitCode;

/// `--find-max`: probes one after another, each printed as it ends, then the answer with its
/// margin; `--save-result` keeps every probe's result.
pub async fn run(a: &BenchArgs, knob: &str, target: BenchTarget, plans: Vec<Plan>) -> ExitCode {
    use bench::find_max::{judge, parse_slo, Knob, Search};
    let knob = match Knob::parse(knob) {
        Ok(k) => k,
        Err(e) => return usage(e),
    };
    let slo = match parse_slo(a.slo.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let Some(base) = plans.into_iter().next() else {
        return usage("no plan to probe");
    };
    let mut search = Search::new(knob, slo, a.find_max_tolerance);
    let mut results = Vec::new();
    let name = match knob {
        Knob::Rate => "rate (req/s)",
        Knob::Concurrency => "concurrency",
    };
    eprintln!(
        "finding the highest {name} on route {} that meets {}",
        target.route,
        a.slo.as_deref().unwrap_or("")
    );
    while let Some(load) = search.next() {
        let mut plan = base.clone();
        plan.load = match knob {
            Knob::Concurrency => Load::Closed {
                concurrency: load as usize,
            },
            Knob::Rate => Load::Open {
                rate: load,
                burstiness: a.burstiness,
                max_concurrency: a.max_concurrency,
            },
        };
        let r = match run_all(a, target.clone(), vec![plan]).await {
            Ok(mut r) if !r.is_empty() => r.remove(0),
            Ok(_) => return usage("a probe returned no result"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let p = judge(load, &r, &search.slo);
        let values: Vec<String> = p
            .values
            .iter()
            .map(|(m, v)| format!("{m} {}", v.map_or("-".into(), |v| format!("{v:.1}"))))
            .collect();
        println!(
            "probe {:>2}: {name} {:<8} {:<6}  {} ({} ok, {} failed, {:.2} req/s)",
            search.probes.len() + 1,
            crate::format::trim_float(load),
            if p.ok { "meets" } else { "misses" },
            values.join(", "),
            p.completed,
            p.failed,
            p.request_throughput
        );
        search.probes.push(p);
        results.push(r);
    }
    let (lo, hi) = search.bracket();
    match lo {
        Some(lo) => {
            let margin: Vec<String> = search
                .margin()
                .iter()
                .map(|(m, v, left)| format!("{m} {v:.1} ({left:.1} under the limit)"))
                .collect();
            println!(
                "highest {name} that meets the SLO: {} ({}){}",
                crate::format::trim_float(lo),
                margin.join(", "),
                hi.map(|h| format!("; {} misses it", crate::format::trim_float(h)))
                    .unwrap_or_else(|| "; the search's upper bound was reached".into())
            );
        }
        None => println!(
            "no {name} meets the SLO: even {} misses it",
            hi.map(crate::format::trim_float).unwrap_or_default()
        ),
    }
    if let Some(path) = &a.save_result {
        let doc = serde_json::json!({
            "find_max": {
                "knob": search.knob,
                "slo": search.slo,
                "tolerance": search.tolerance,
                "answer": search.answer(),
                "first_miss": hi,
                "margin": search.margin(),
                "probes": search.probes,
            },
            "results": results.iter().map(BenchResult::to_json).collect::<Vec<_>>(),
        });
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap_or_default())
        {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("saved {}", path.display());
    }
    if lo.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
