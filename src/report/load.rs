//! Saved results read back, of every kind `bench` writes and `vllm bench serve --save-result`'s.
use super::run::Run;
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// One run (a soak and a multi-turn run are runs with more in them).
    Run(Run),
    /// Steps of one sweep, in the order run.
    Sweep { name: String, steps: Vec<Run> },
    /// `bench --compare`: two routes under the same load.
    Compare { name: String, sides: Vec<Doc> },
    /// `bench --find-max`: the search and each probe's result.
    FindMax {
        name: String,
        search: Map<String, Value>,
        probes: Vec<Run>,
    },
}

impl Doc {
    pub fn name(&self) -> &str {
        match self {
            Doc::Run(r) => &r.name,
            Doc::Sweep { name, .. } | Doc::Compare { name, .. } | Doc::FindMax { name, .. } => name,
        }
    }

    /// What kind of result this is, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            Doc::Run(r) if r.o.contains_key("soak") => "soak run",
            Doc::Run(r) if r.o.contains_key("per_turn") => "multi-turn run",
            Doc::Run(r) if !r.is_ours() => "vllm bench serve run",
            Doc::Run(_) => "run",
            Doc::Sweep { .. } => "sweep",
            Doc::Compare { .. } => "comparison",
            Doc::FindMax { .. } => "find-max search",
        }
    }

    /// The runs of this document, each with the name it is drawn under.
    pub fn runs(&self) -> Vec<&Run> {
        match self {
            Doc::Run(r) => vec![r],
            Doc::Sweep { steps, .. } => steps.iter().collect(),
            Doc::FindMax { probes, .. } => probes.iter().collect(),
            Doc::Compare { sides, .. } => sides.iter().flat_map(Doc::runs).collect(),
        }
    }
}

/// Reads one saved result; the error names the file (and the line and column of bad JSON).
pub fn read(path: &Path) -> Result<Doc, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{shown}:{}:{}: {e}", e.line(), e.column()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.to_string());
    parse(&stem, v).map_err(|e| format!("{shown}: {e}"))
}

/// A document from its JSON; `name` is what it is called when it has no label.
pub fn parse(name: &str, v: Value) -> Result<Doc, String> {
    let Value::Object(o) = v else {
        return Err("a saved result is a JSON object".into());
    };
    if let (Some(Value::Object(search)), Some(Value::Array(results))) =
        (o.get("find_max"), o.get("results"))
    {
        let probes = results
            .iter()
            .enumerate()
            .map(|(i, r)| run(&format!("probe {}", i + 1), r.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("find_max results: {e}"))?;
        let probes = probes
            .into_iter()
            .map(|r| {
                let n = step_name(&r);
                Run { name: n, ..r }
            })
            .collect();
        return Ok(Doc::FindMax {
            name: name.to_string(),
            search: search.clone(),
            probes,
        });
    }
    if let (Some(a), Some(b)) = (o.get("a"), o.get("b")) {
        let side = |k: &str, v: &Value| {
            let label = v
                .get("label")
                .and_then(Value::as_str)
                .or_else(|| v.pointer("/steps/0/label").and_then(Value::as_str))
                .unwrap_or(k)
                .to_string();
            parse(&label, v.clone()).map_err(|e| format!("`{k}`: {e}"))
        };
        return Ok(Doc::Compare {
            name: name.to_string(),
            sides: vec![side("a", a)?, side("b", b)?],
        });
    }
    if let Some(Value::Array(steps)) = o.get("steps") {
        let steps = steps
            .iter()
            .map(|s| {
                run(name, s.clone()).map(|r| Run {
                    name: step_name(&r),
                    ..r
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("steps: {e}"))?;
        if steps.is_empty() {
            return Err("a sweep with no steps".into());
        }
        let label = steps[0].s("label");
        return Ok(Doc::Sweep {
            name: if label.is_empty() {
                name.to_string()
            } else {
                label
            },
            steps,
        });
    }
    run(name, Value::Object(o)).map(Doc::Run)
}

fn run(name: &str, v: Value) -> Result<Run, String> {
    let Value::Object(o) = v else {
        return Err("a run is a JSON object".into());
    };
    if !o.get("duration").is_some_and(Value::is_number)
        || !o.get("completed").is_some_and(Value::is_number)
    {
        return Err(
            "not a benchmark result: no `duration` and `completed` (nor `steps`, `a`/`b`, `find_max`)"
                .into(),
        );
    }
    let label = o.get("label").and_then(Value::as_str).unwrap_or_default();
    let name = if label.is_empty() { name } else { label };
    Ok(Run::new(name.to_string(), o))
}

/// A sweep step's name: its load.
fn step_name(r: &Run) -> String {
    if let Some(c) = r.at("/config/load/concurrency").and_then(Value::as_f64) {
        return format!("concurrency {c}");
    }
    match (r.rate(), r.f("max_concurrency")) {
        (Some(rate), _) => format!("{} req/s", crate::format::trim_float(rate)),
        (None, Some(c)) => format!("concurrency {c}"),
        (None, None) => r.name.clone(),
    }
}
