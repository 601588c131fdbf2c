//! The Bench pane's state: the form, the run under way, the results on screen, and a find-max
//! search's probes.
use crate::bench::find_max::Search;
use crate::bench::{BenchResult, Plan, Progress};

#[derive(Debug, Clone, PartialEq)]
pub struct BenchForm {
    pub route: usize,
    /// Open loop (a rate) instead of closed (a concurrency).
    pub open: bool,
    /// An open loop's rate ramps linearly from 1 req/s to `rate` over the requests.
    pub ramp: bool,
    pub concurrency: usize,
    pub rate: f64,
    pub by_duration: bool,
    pub requests: u64,
    pub duration_s: f64,
    pub input_len: u32,
    pub output_len: u32,
    /// A second route to run the same workload on, by index into the routes.
    pub compare: Option<usize>,
    /// The operator picked the route; until then the form follows a route that is up.
    pub route_chosen: bool,
    /// Index into [`WORKLOADS`].
    pub workload: usize,
    /// Search for the highest load that meets `slo` instead of one run.
    pub find_max: bool,
    /// A soak run: windows with their drift and a verdict (needs a duration).
    pub soak: bool,
    /// The search's SLO, as `--slo` takes it.
    pub slo: String,
}

/// The Bench form's workloads: random prompts; 10 shared prefixes of the input length, each
/// request with a quarter of it of its own; conversations of 4 turns (closed loop).
pub const WORKLOADS: [&str; 3] = ["random", "prefix ×10", "multi-turn ×4"];

pub const BENCH_FIELDS: [&str; 11] = [
    "route",
    "load",
    "concurrency / rate",
    "stop after",
    "requests / seconds",
    "input tokens",
    "output tokens",
    "compare with",
    "workload",
    "mode",
    "SLO",
];

/// The Bench form's default SLO for a search: what an interactive chat user notices.
pub const DEFAULT_SLO: &str = "p99_ttft_ms<=500";

/// A find-max search started from the Bench pane: one full run per probe on the form's
/// workload, the load chosen by [`Search`]. Kept after it ends so its curve stays on screen.
#[derive(Debug, Clone)]
pub struct FindMaxRun {
    pub route: String,
    pub search: Search,
    /// The form's plan; each probe sets its load.
    pub base: Plan,
    /// Each probe's full result, in probing order.
    pub results: Vec<BenchResult>,
    /// The load of the probe running now; `None` once the search is over.
    pub current: Option<f64>,
    /// The operator stopped the search: the probe then running is not judged.
    pub stopped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunningBench {
    pub id: u64,
    pub route: String,
    pub progress: Progress,
    /// After this run, the same workload on this route.
    pub then: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BenchView {
    pub form: BenchForm,
    pub field: usize,
    pub running: Option<RunningBench>,
    /// The last run's results: the route, then the compared route.
    pub results: Vec<BenchResult>,
    pub baseline: Option<BenchResult>,
    pub next_id: u64,
    /// The last find-max search, running or over; cleared by a single run.
    pub find_max: Option<FindMaxRun>,
}

impl BenchForm {
    /// A soak run's window: a twelfth of its duration, at least 10 s.
    pub fn soak_window_s(&self) -> f64 {
        (self.duration_s / 12.0).max(10.0).round()
    }
}
