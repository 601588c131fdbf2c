//! `bench`'s flags turned into plans: the workload, the stop, goodput limits, ramp-up, and one
//! load per sweep step; every bad combination refused naming the flag.
use super::bench_args::BenchArgs;
use crate::bench::arrivals::{Ramp, RampStrategy};
use crate::bench::{Load, Plan, Slo, Stop, Workload};
use crate::input;

/// The plans to run: one, or one per sweep step.
pub fn plans(a: &BenchArgs) -> Result<Vec<Plan>, String> {
    let workload = workload(a)?;
    if !(0.0..1.0).contains(&a.range_ratio) {
        return Err(format!("--range-ratio {} must be in [0, 1)", a.range_ratio));
    }
    if a.burstiness.is_nan() || a.burstiness <= 0.0 {
        return Err("--burstiness must be positive (1 = Poisson, inf = evenly spaced)".into());
    }
    let stop = match (a.requests, a.duration) {
        (Some(_), Some(_)) => return Err("give --requests or --duration, not both".into()),
        (Some(0), _) => return Err("--requests must be at least 1".into()),
        (Some(n), None) => Stop::Requests(n),
        (None, Some(d)) if d > 0.0 => Stop::DurationS(d),
        (None, Some(_)) => return Err("--duration must be positive".into()),
        (None, None) => Stop::Requests(100),
    };
    let soak = match a.soak {
        false => None,
        true => {
            let mut rules = crate::bench::soak::Rules::default();
            for r in &a.soak_rule {
                rules.set(r)?;
            }
            Some(crate::bench::soak::SoakPlan {
                window_s: a.soak_window.unwrap_or(300.0),
                rules,
            })
        }
    };
    let slo = match (&a.goodput, &a.slo) {
        (Some(g), _) => Slo::parse(g).map_err(|e| format!("--goodput: {e}"))?,
        // A search's latency limits, applied to each request, give each probe a goodput:
        // `p99_ttft_ms<=200` is `ttft:200`.
        (None, Some(s)) => goodput_of_slo(s),
        (None, None) => Slo::default(),
    };
    if a.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err("--rate must be positive".into());
    }
    if a.concurrency == Some(0) || a.max_concurrency == Some(0) {
        return Err("a concurrency must be at least 1".into());
    }
    let load_for = |conc: Option<usize>, rate: Option<f64>| match rate {
        Some(r) => Load::Open {
            rate: r,
            burstiness: a.burstiness,
            max_concurrency: a.max_concurrency.or(conc),
        },
        None => Load::Closed {
            concurrency: conc.unwrap_or(1),
        },
    };
    let ramp = ramp(a, stop)?;
    let loads = loads(a, ramp, &load_for)?;
    let http = crate::bench::HttpClient::parse(&a.http_client)?;
    Ok(loads
        .into_iter()
        .map(|load| Plan {
            warmup: a.warmup,
            seed: a.seed,
            slo,
            timeout_s: a.timeout,
            idle_timeout_s: a.idle_timeout,
            temperature: a.temperature,
            detailed: a.save_detailed,
            tokenizer: a.tokenizer.clone(),
            server_metrics_interval_s: a.server_metrics_interval,
            http,
            ramp,
            soak: soak.clone(),
            ..Plan::new(load, stop, workload.clone())
        })
        .collect())
}

/// `--dataset-name` and its lengths or file.
fn workload(a: &BenchArgs) -> Result<Workload, String> {
    Ok(match a.dataset_name.as_str() {
        "random" => Workload::Random {
            input_len: a.input_len.max(1),
            output_len: a.output_len.unwrap_or(128).max(1),
            range_ratio: a.range_ratio,
        },
        "multi-turn" | "multi_turn" => Workload::MultiTurn {
            turns: a.turns,
            input_len: a.input_len.max(1),
            output_len: a.output_len.unwrap_or(128).max(1),
            think_time_s: a.think_time,
        },
        "prefix" => Workload::Prefix {
            prefix_len: a.prefix_len.max(1),
            suffix_len: a.suffix_len.max(1),
            groups: a.prefix_groups,
            output_len: a.output_len.unwrap_or(128).max(1),
        },
        "jsonl" | "sharegpt" => {
            let path = a.dataset_path.clone().ok_or_else(|| {
                format!(
                    "--dataset-name {} needs --dataset-path FILE",
                    a.dataset_name
                )
            })?;
            if a.dataset_name == "jsonl" {
                Workload::Jsonl {
                    path,
                    output_len: a.output_len,
                }
            } else {
                Workload::ShareGpt {
                    path,
                    output_len: a.output_len,
                }
            }
        }
        other => {
            return Err(format!(
                "--dataset-name `{other}`: use random, prefix, multi-turn, jsonl or sharegpt"
            ))
        }
    })
}

/// `--ramp-up-strategy` with its start and end rates (over a counted run only).
fn ramp(a: &BenchArgs, stop: Stop) -> Result<Option<Ramp>, String> {
    Ok(match &a.ramp_up_strategy {
        None => None,
        Some(st) => {
            let strategy = match st.as_str() {
                "linear" => RampStrategy::Linear,
                "exponential" => RampStrategy::Exponential,
                other => {
                    return Err(format!(
                        "--ramp-up-strategy `{other}`: use linear or exponential"
                    ))
                }
            };
            if !matches!(stop, Stop::Requests(_)) || a.requests.is_none() {
                return Err("--ramp-up-strategy ramps over the requests: give --requests N".into());
            }
            Some(Ramp {
                strategy,
                start_rps: a.ramp_up_start_rps.unwrap_or(1.0),
                end_rps: a.ramp_up_end_rps.unwrap_or(1.0),
            })
        }
    })
}

/// The loads to run: the one the flags give, or one per `--sweep` step.
fn loads(
    a: &BenchArgs,
    ramp: Option<Ramp>,
    load_for: &dyn Fn(Option<usize>, Option<f64>) -> Load,
) -> Result<Vec<Load>, String> {
    Ok(match &a.sweep {
        None => vec![load_for(a.concurrency, ramp.map(|r| r.end_rps).or(a.rate))],
        Some(spec) => {
            let (what, list) = match spec.split_once('=') {
                Some((w, l)) => (w.trim(), l),
                None => (
                    if a.rate.is_some() {
                        "rate"
                    } else {
                        "concurrency"
                    },
                    spec.as_str(),
                ),
            };
            let items: Vec<&str> = list.split(',').collect();
            if items.len() as u64 > input::MAX_CONCURRENCY {
                return Err(format!("--sweep: {} steps are too many", items.len()));
            }
            match what {
                // With --rate, each step is the open loop's cap on requests in flight.
                "concurrency" | "c" => {
                    if a.rate.is_some() && a.max_concurrency.is_some() {
                        return Err("--sweep concurrency with --rate sets the cap on requests in flight: give it or --max-concurrency, not both".into());
                    }
                    items
                        .iter()
                        .map(|v| {
                            input::concurrency(v)
                                .map(|c| load_for(Some(c), a.rate))
                                .map_err(|e| format!("--sweep `{spec}`: {e} (concurrencies are whole numbers, e.g. concurrency=1,2,4,8)"))
                        })
                        .collect::<Result<_, _>>()?
                }
                "rate" | "r" => items
                    .iter()
                    .map(|v| {
                        input::rate(v)
                            .map(|r| load_for(a.concurrency, Some(r)))
                            .map_err(|e| format!("--sweep `{spec}`: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(format!(
                        "--sweep `{other}=`: sweep over concurrency or rate"
                    ))
                }
            }
        }
    })
}

/// The per-request limits in a search's `--slo` (its `*_ttft_ms`, `*_tpot_ms`, `*_e2el_ms`
/// bounds), for goodput; other limits (throughput) have no per-request form.
fn goodput_of_slo(text: &str) -> Slo {
    let mut slo = Slo::default();
    for l in crate::bench::find_max::parse_slo(text).unwrap_or_default() {
        let m = l.metric.as_str();
        let keep = |old: Option<f64>| Some(old.map_or(l.max, |o: f64| o.min(l.max)));
        if m.ends_with("_ttft_ms") {
            slo.ttft_ms = keep(slo.ttft_ms);
        } else if m.ends_with("_tpot_ms") {
            slo.tpot_ms = keep(slo.tpot_ms);
        } else if m.ends_with("_e2el_ms") {
            slo.e2el_ms = keep(slo.e2el_ms);
        }
    }
    slo
}
