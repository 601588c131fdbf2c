//! Reports: any saved result (a run, a sweep, a find-max search, a comparison, a soak, a
//! multi-turn run, or `vllm bench serve --save-result`'s file) as one self-contained HTML file
//! whose charts are inline SVG drawn by plotters; optionally each chart as a PNG too.
pub mod chart;
pub mod facts;
pub mod html;
pub mod load;
pub mod overlay;
pub mod page;
pub mod render;
pub mod run;
pub mod single;
pub mod steps;

use load::Doc;
use page::{Block, Page, Table};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// GPUs serving the route, for tokens/s per GPU (default 1, said on the chart).
    pub gpus: Option<f64>,
    /// What the page says it was made from (file names).
    pub sources: Vec<String>,
}

/// The page for these results: a comparison first when there are several, then each one.
pub fn build(docs: &[Doc], opts: &Options) -> Page {
    let mut page = Page {
        title: title(docs),
        blocks: Vec::new(),
    };
    let gpus = opts.gpus.unwrap_or(1.0);
    let sides: Vec<&Doc> = match docs {
        [Doc::Compare { sides, .. }] => sides.iter().collect(),
        _ => docs.iter().collect(),
    };
    if sides.len() > 1 {
        page.heading(
            2,
            format!(
                "Comparison: {}",
                sides
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(" vs ")
            ),
        );
        if sides.iter().all(|d| matches!(d, Doc::Run(_))) {
            let runs: Vec<&run::Run> = sides.iter().flat_map(|d| d.runs()).collect();
            overlay::runs(&mut page, &runs);
        } else {
            overlay::curves(&mut page, &sides, gpus);
        }
    }
    let many = sides.len() > 1;
    for (i, d) in sides.iter().enumerate() {
        let p = if many {
            format!("d{}-", i + 1)
        } else {
            String::new()
        };
        page.heading(2, format!("{}: {}", capital(d.kind()), d.name()));
        section(&mut page, d, &p, gpus);
    }
    page
}

fn section(page: &mut Page, d: &Doc, p: &str, gpus: f64) {
    match d {
        Doc::Run(r) => {
            facts::summary(page, r, p);
            facts::soak(page, r, p);
            single::turns(page, r, p);
            page.heading(3, "Over time");
            single::over_time(page, r, p);
            page.heading(3, "Distributions");
            single::distributions(page, r, p);
            single::timeline(page, r, p);
            page.heading(3, "How it ran");
            facts::setup(page, r, p);
        }
        Doc::Sweep { steps: runs, .. } => {
            let frame = steps::Frame {
                limits: goodput_limits(runs),
                knee: steps::power_knee(runs),
                gpus,
            };
            steps::charts(page, runs, &frame, p);
            if let Some(first) = runs.first() {
                page.heading(3, "How it ran (first step)");
                facts::setup(page, first, p);
            }
        }
        Doc::FindMax { search, probes, .. } => find_max(page, search, probes, p, gpus),
        Doc::Compare { sides, .. } => {
            for (i, s) in sides.iter().enumerate() {
                page.heading(3, format!("{}: {}", capital(s.kind()), s.name()));
                section(page, s, &format!("{p}s{}-", i + 1), gpus);
            }
        }
    }
}

fn find_max(
    page: &mut Page,
    search: &serde_json::Map<String, Value>,
    probes: &[run::Run],
    p: &str,
    gpus: f64,
) {
    let knob = search.get("knob").and_then(Value::as_str).unwrap_or("load");
    let answer = search.get("answer").and_then(Value::as_f64);
    let knee_found = search
        .get("knee_found")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let first_miss = search.get("first_miss").and_then(Value::as_f64);
    let line = match (answer, knee_found) {
        (Some(a), true) => format!(
            "highest {knob} that meets the SLO: {}{}",
            crate::format::trim_float(a),
            first_miss
                .map(|m| format!("; {} misses it", crate::format::trim_float(m)))
                .unwrap_or_default()
        ),
        (Some(a), false) => format!(
            "no knee found up to {knob} {}: every probe met the SLO",
            crate::format::trim_float(a)
        ),
        (None, _) => format!("no {knob} meets the SLO"),
    };
    page.blocks.push(Block::Verdict {
        pass: answer.is_some(),
        line,
    });
    if let Some(why) = search
        .get("cap")
        .and_then(|c| c.get("why"))
        .and_then(Value::as_str)
    {
        page.text(format!("Capped: {why}."));
    }
    let limits: Vec<steps::Limit> = search
        .get("slo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some(steps::Limit {
                metric: l.get("metric")?.as_str()?.to_string(),
                max: l.get("max")?.as_f64()?,
            })
        })
        .collect();
    let mut runs: Vec<run::Run> = probes.to_vec();
    runs.sort_by(|a, b| steps::load(a).0.total_cmp(&steps::load(b).0));
    let knee = answer.filter(|_| knee_found).and_then(|a| {
        runs.iter()
            .position(|r| (steps::load(r).0 - a).abs() < 1e-9)
            .map(|i| (i, "knee: the highest load within the SLO".to_string()))
    });
    let mut t = Table::new(
        &format!("{p}probes"),
        "Probes, in the order run",
        &[
            "#",
            "load",
            "completed",
            "failed",
            "req/s",
            "within the SLO",
            "figures",
        ],
    );
    for (i, pr) in search
        .get("probes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let g = |k: &str| pr.get(k).and_then(Value::as_f64);
        let values: Vec<String> = pr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                Some(format!(
                    "{} {}",
                    v.get(0)?.as_str()?,
                    page::num(v.get(1)?.as_f64())
                ))
            })
            .collect();
        let ok = pr.get("ok").and_then(Value::as_bool) == Some(true);
        t.row(vec![
            (i + 1).to_string(),
            page::num(g("load")),
            page::num(g("completed")),
            page::num(g("failed")),
            page::num(g("request_throughput")),
            if ok { "yes".into() } else { "MISS".into() },
            values.join(", "),
        ]);
    }
    page.table(t);
    let frame = steps::Frame { limits, knee, gpus };
    steps::charts(page, &runs, &frame, p);
    if let Some(first) = runs.first() {
        page.heading(3, "How it ran (first probe)");
        facts::setup(page, first, p);
    }
}

/// A sweep's per-request goodput limits (`--goodput ttft:500`), drawn as its SLO lines.
fn goodput_limits(runs: &[run::Run]) -> Vec<steps::Limit> {
    let Some(Value::Object(slo)) = runs.first().and_then(|r| r.o.get("goodput_slo")) else {
        return Vec::new();
    };
    slo.iter()
        .filter_map(|(k, v)| {
            Some(steps::Limit {
                metric: format!("goodput_{k}"),
                max: v.as_f64()?,
            })
        })
        .collect()
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn title(docs: &[Doc]) -> String {
    match docs {
        [d] => format!("anorag-tui report: {} {}", d.kind(), d.name()),
        _ => format!("anorag-tui report: {} results compared", docs.len()),
    }
}

/// The finished HTML.
pub fn html(docs: &[Doc], opts: &Options) -> Result<String, String> {
    let page = build(docs, opts);
    let mut subtitle = format!("Made by anorag-tui {}", env!("CARGO_PKG_VERSION"));
    if !opts.sources.is_empty() {
        subtitle.push_str(&format!(" from {}", opts.sources.join(", ")));
    }
    let dates: Vec<String> = docs
        .iter()
        .flat_map(|d| d.runs())
        .map(|r| r.s("date"))
        .filter(|d| !d.is_empty())
        .collect();
    if let Some(d) = dates.first() {
        subtitle.push_str(&format!("; run {d}"));
    }
    subtitle.push_str(". One file: no script, no network; charts are inline SVG.");
    html::page(&page, &subtitle)
}

/// Reads the files, writes the report to `out`, and with `png` each chart beside it as
/// `<out stem>-<chart id>.png`. Returns the files written.
pub fn write(
    files: &[PathBuf],
    out: &Path,
    png: bool,
    gpus: Option<f64>,
) -> Result<Vec<PathBuf>, String> {
    let docs = files
        .iter()
        .map(|f| load::read(f))
        .collect::<Result<Vec<_>, _>>()?;
    write_docs(&docs, files, out, png, gpus)
}

pub fn write_docs(
    docs: &[Doc],
    files: &[PathBuf],
    out: &Path,
    png: bool,
    gpus: Option<f64>,
) -> Result<Vec<PathBuf>, String> {
    let opts = Options {
        gpus,
        sources: files
            .iter()
            .map(|f| {
                f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect(),
    };
    let text = html(docs, &opts)?;
    std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = vec![out.to_path_buf()];
    if png {
        let page = build(docs, &opts);
        let stem = out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report".into());
        let dir = out.parent().unwrap_or(Path::new("."));
        for c in page.charts() {
            let bytes = render::png(c)?;
            let path = dir.join(format!("{stem}-{}.png", c.id));
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Where a result's report goes when it is written beside its JSON: `x.json` -> `x.html`.
pub fn beside(json: &Path) -> PathBuf {
    json.with_extension("html")
}
