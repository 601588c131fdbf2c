//! The prompts of a run, before it starts: for random prompts, exact token lengths from the
//! server's tokenizer (vLLM's `/tokenize`) or a `tokenizer.json` (`--tokenizer`); otherwise
//! the word estimate, said as a warning. Files' prompts are sent as written.
use super::exact::{self, PromptTokens};
use super::plan::{BenchTarget, Load, Plan, Stop};
use super::tokenize::{Method, Tokenizer};
use super::workload::{PromptSource, Workload};
use crate::provider::ProviderKind;

/// How many distinct prompts the run needs (its requests and warm-up; for a timed run, what
/// the rate sends in that time with a margin). A timed closed loop sends an unknown number:
/// it takes [`CLOSED_TIMED_POOL`] and uses them again in turn (the result's
/// `prompt_tokens.distinct_prompts` says so; `--requests` makes every prompt distinct).
pub fn needed(plan: &Plan) -> usize {
    let n = match plan.stop {
        Stop::Requests(n) => n,
        Stop::DurationS(d) => match plan.load {
            Load::Open { rate, .. } => (rate * d * 1.1).ceil().min(1e9) as u64,
            Load::Closed { .. } => CLOSED_TIMED_POOL as u64,
        },
    };
    // A conversation is `turns` requests, each with its own question.
    let n = match plan.workload {
        Workload::MultiTurn { turns, .. } => n.saturating_mul(u64::from(turns.max(1))),
        _ => n,
    };
    n.saturating_add(plan.warmup)
        .min(exact::MAX_DISTINCT as u64) as usize
}

/// Distinct prompts made for a timed closed-loop run.
pub const CLOSED_TIMED_POOL: usize = 512;

/// The run's prompts and how their lengths were made.
pub async fn prompts(
    target: &BenchTarget,
    plan: &Plan,
) -> Result<(PromptSource, PromptTokens), String> {
    let info = |method, warning| PromptTokens {
        method,
        template_overhead: None,
        inexact_prompts: 0,
        distinct_prompts: 0,
        asked_total: 0,
        sent_total: 0,
        warning,
    };
    let exact_kind = match plan.workload {
        Workload::Random { .. } | Workload::Prefix { .. } | Workload::MultiTurn { .. } => true,
        Workload::Jsonl { .. } | Workload::ShareGpt { .. } => false,
    };
    if !exact_kind {
        let source = plan.workload.source(plan.seed).map_err(|e| e.to_string())?;
        return Ok((source, info(Method::Dataset, None)));
    }
    let tok = match &plan.tokenizer {
        Some(p) => Tokenizer::from_file(p),
        None if target.kind == ProviderKind::VllmOpenai => {
            Tokenizer::server(&target.base_url, &target.model)
                .await
                .map_err(|e| format!("the server's /tokenize is not usable ({e})"))
        }
        None => Err(format!(
            "a {} route has no /tokenize; give --tokenizer PATH (the model's tokenizer.json)",
            target.kind.as_str()
        )),
    };
    let built = match (tok, &plan.workload) {
        (
            Ok(t),
            Workload::Random {
                input_len,
                output_len,
                range_ratio,
            },
        ) => {
            exact::build(
                &t,
                needed(plan),
                *input_len,
                *output_len,
                *range_ratio,
                plan.seed,
            )
            .await
        }
        (
            Ok(t),
            Workload::Prefix {
                prefix_len,
                suffix_len,
                groups,
                output_len,
            },
        ) => {
            exact::build_prefix(
                &t,
                needed(plan),
                *prefix_len,
                *suffix_len,
                *groups,
                *output_len,
                plan.seed,
            )
            .await
        }
        (
            Ok(t),
            Workload::MultiTurn {
                input_len,
                output_len,
                ..
            },
        ) => exact::build(&t, needed(plan), *input_len, *output_len, 0.0, plan.seed).await,
        (Ok(_), _) => Err("not a generated workload".into()),
        (Err(e), _) => Err(e),
    }
    .map_err(|e| format!("no exact lengths: {e}"));
    match built {
        Ok(e) => Ok((PromptSource::Pool(e.prompts), e.info)),
        Err(why) => {
            let source = plan.workload.source(plan.seed).map_err(|e| e.to_string())?;
            let warning = format!(
                "input lengths are estimates (common words, about one token each): {why}; the server's own counts are reported"
            );
            Ok((source, info(Method::WordEstimate, Some(warning))))
        }
    }
}
