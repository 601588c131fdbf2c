//! `bench --find-max rate|concurrency --slo ...`: the SLO search driven from the command line,
//! one full measured run per probe (the search itself is `bench::find_max`).
use super::bench_args::BenchArgs;
use super::bench_run::{run_all, usage};
use crate::bench::{self, BenchTarget, Plan};
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
    let Some(mut base) = plans.into_iter().next() else {
        return usage("no plan to probe");
    };
    if knob == Knob::Rate {
        // A rate search is open-loop whatever the base says; the flags shape its arrivals.
        base.load = crate::bench::Load::Open {
            rate: 1.0,
            burstiness: a.burstiness,
            max_concurrency: a.max_concurrency,
        };
    }
    let mut search = Search::new(knob, slo, a.find_max_tolerance).capped_by(&base);
    if let Some((_, why)) = &search.cap {
        eprintln!("capped: {why}");
    }
    let mut results = Vec::new();
    eprintln!(
        "finding the highest {} on route {} that meets {}",
        knob.name(),
        target.route,
        a.slo.as_deref().unwrap_or("")
    );
    while let Some(load) = search.next() {
        let r = match run_all(a, target.clone(), vec![knob.plan(&base, load)]).await {
            Ok(mut r) if !r.is_empty() => r.remove(0),
            Ok(_) => return usage("a probe returned no result"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let p = judge(load, &r, &search.slo);
        // With --json, stdout holds the one JSON document; the progress goes to stderr.
        let line = p.line(search.probes.len() + 1, knob);
        if a.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        search.probes.push(p);
        results.push(r);
    }
    let doc = search.document(&results);
    if a.json {
        eprintln!("{}", search.summary());
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{}", search.summary());
    }
    if let Err(e) = super::bench_run::save(a, &doc) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if search.answer().is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
