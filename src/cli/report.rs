//! `anorag-tui report`: saved results as one self-contained HTML file (and PNGs).
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Saved results: `bench --save-result` files of any kind (run, sweep, find-max, comparison,
    /// soak, multi-turn) or `vllm bench serve --save-result` files. Several are compared.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where the report goes (default: the first file's name with `.html`).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `html` (default), or `png` for the HTML and each chart as a PNG beside it.
    #[arg(long, default_value = "html", value_parser = ["html", "png"])]
    pub format: String,
    /// GPUs serving the route, for output tokens/s per GPU on the Pareto chart (default 1).
    #[arg(long, value_name = "N")]
    pub gpus: Option<f64>,
}

pub fn run(a: ReportArgs) -> ExitCode {
    if let Some(g) = a.gpus.filter(|g| !(g.is_finite() && *g > 0.0)) {
        eprintln!("error: --gpus {g}: a count of GPUs above 0");
        return ExitCode::from(2);
    }
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| crate::report::beside(&a.files[0]));
    if a.files.contains(&out) {
        eprintln!(
            "error: -o {}: that is one of the results read; name another file",
            out.display()
        );
        return ExitCode::from(2);
    }
    match crate::report::write(&a.files, &out, a.format == "png", a.gpus) {
        Ok(written) => {
            for w in written {
                println!("wrote {}", w.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
