//! `anorag-tui bench`'s flags.
use crate::input;
use std::path::PathBuf;
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Route to load (default: the config's default route). Its own servers only: no
    /// retries, no fallback.
    #[arg(long)]
    pub route: Option<String>,
    #[command(flatten)]
    pub adhoc: super::chat::AdhocTarget,
    /// Closed loop: keep N requests in flight (default 1). With --rate: at most N in flight.
    #[arg(long, value_parser = input::concurrency)]
    pub concurrency: Option<usize>,
    /// Open loop: requests per second, sent at absolute target times.
    #[arg(long, value_parser = input::rate)]
    pub rate: Option<f64>,
    /// Gamma shape of the gaps between arrivals: 1 is Poisson, less is burstier, inf is even.
    #[arg(long, default_value_t = 1.0, value_parser = input::burstiness)]
    pub burstiness: f64,
    /// With --rate: at most N in flight (requests wait in the client for a slot).
    #[arg(long, value_parser = input::concurrency)]
    pub max_concurrency: Option<usize>,
    /// Stop after N measured requests (default 100 when --duration is not given).
    #[arg(long, alias = "num-prompts", value_parser = input::count(1, u64::MAX))]
    pub requests: Option<u64>,
    /// Stop sending after S seconds, then wait for the requests in flight.
    #[arg(long, value_parser = input::seconds(0.001))]
    pub duration: Option<f64>,
    /// Requests sent and awaited first, left out of every figure.
    #[arg(long, alias = "num-warmups", default_value_t = 0)]
    pub warmup: u64,
    /// Steps: `concurrency=1,2,4,8`, `rate=1,2,5,10`, or a bare list (concurrencies, or
    /// rates when --rate is given). Each step is a full run, reported on its own.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Open loop whose rate ramps over the requests from --ramp-up-start-rps to
    /// --ramp-up-end-rps: `linear` or `exponential` (vLLM's semantics; needs --requests).
    #[arg(long, requires_all = ["ramp_up_start_rps", "ramp_up_end_rps"], conflicts_with_all = ["rate", "sweep"])]
    pub ramp_up_strategy: Option<String>,
    #[arg(long, value_parser = input::rate)]
    pub ramp_up_start_rps: Option<f64>,
    #[arg(long, value_parser = input::rate)]
    pub ramp_up_end_rps: Option<f64>,
    /// Find the highest `rate` or `concurrency` that meets --slo: each probe is a full run
    /// (--requests or --duration each); doubles until a probe misses, then bisects.
    #[arg(long, requires = "slo", conflicts_with_all = ["sweep", "compare"])]
    pub find_max: Option<String>,
    /// Limits for --find-max, e.g. "p99_ttft_ms<=500,p99_tpot_ms<=50" (the result's keys).
    #[arg(long)]
    pub slo: Option<String>,
    /// Stop --find-max when the bracket is this narrow (requests/s; default 5% of the answer
    /// for a rate, 1 for a concurrency).
    #[arg(long, value_parser = input::rate)]
    pub find_max_tolerance: Option<f64>,
    /// Service-level objectives for goodput, in ms: `ttft:500,tpot:50,e2el:2000`.
    #[arg(long)]
    pub goodput: Option<String>,
    /// `random` (default), `jsonl` or `sharegpt`.
    #[arg(long, default_value = "random")]
    pub dataset_name: String,
    /// The prompt file for `jsonl` and `sharegpt`.
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    #[arg(long, alias = "random-input-len", default_value_t = 1024)]
    pub input_len: u32,
    /// A tokenizer.json (or a model folder with one) for exact prompt lengths on servers
    /// without /tokenize (OpenAI, Ollama) or offline; vLLM's own /tokenize is used otherwise.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// --dataset-name multi-turn: turns per conversation (--requests counts conversations).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub turns: u32,
    /// --dataset-name multi-turn: seconds between an answer and the next question.
    #[arg(long, default_value_t = 0.0, value_parser = input::seconds(0.0))]
    pub think_time: f64,
    /// --dataset-name prefix: tokens of each shared prefix.
    #[arg(long, alias = "prefix-repetition-prefix-len", default_value_t = 256)]
    pub prefix_len: u32,
    /// --dataset-name prefix: each request's own tokens after its prefix.
    #[arg(long, alias = "prefix-repetition-suffix-len", default_value_t = 256)]
    pub suffix_len: u32,
    /// --dataset-name prefix: how many different prefixes the requests share.
    #[arg(long, alias = "prefix-repetition-num-prefixes", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub prefix_groups: u32,
    /// Seconds between scrapes of a vLLM route's /metrics during the run (queue, KV cache,
    /// preemptions, server tok/s, and the server's own TTFT and E2E); 0 turns them off.
    #[arg(long, default_value_t = 0.5, value_parser = input::seconds(0.0))]
    pub server_metrics_interval: f64,
    /// The HTTP client that streams the answers: `lean` (a plain HTTP/1.1 client that reads
    /// only what the figures need, used for SSE over http:// without a proxy; reqwest
    /// elsewhere) or `reqwest` everywhere, to compare the two.
    #[arg(long, default_value = "lean", value_parser = ["lean", "reqwest"])]
    pub http_client: String,
    /// Output tokens asked for (with ignore_eos where the server supports it). For files:
    /// overrides each prompt's own length.
    #[arg(long, alias = "random-output-len")]
    pub output_len: Option<u32>,
    /// Random lengths drawn within ±ratio of --input-len / --output-len.
    #[arg(long, alias = "random-range-ratio", default_value_t = 0.0, value_parser = input::fraction)]
    pub range_ratio: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_parser = input::temperature)]
    pub temperature: Option<f32>,
    /// Seconds per request, from sending to the end of the answer.
    #[arg(long, default_value_t = 600.0, value_parser = input::seconds(0.001))]
    pub timeout: f64,
    /// Longest gap, in seconds, between two events once the answer has started.
    #[arg(long, default_value_t = 120.0, value_parser = input::seconds(0.001))]
    pub idle_timeout: f64,
    /// One JSON object (a sweep: `{"steps": [...]}`) on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Write the result as JSON (ours, a superset of `vllm bench serve`'s).
    #[arg(long)]
    pub save_result: Option<PathBuf>,
    /// With --save-result: the HTML report beside it too (`x.json` -> `x.html`).
    #[arg(long, requires = "save_result")]
    pub report: bool,
    /// Per-request arrays in the saved result (input/output lengths, TTFTs, ITLs, ...).
    #[arg(long)]
    pub save_detailed: bool,
    /// A soak run (with --duration): figures per window as they close, the server's memory
    /// at each close, and a verdict by drift (exit 1 when it fails).
    #[arg(long, requires = "duration")]
    pub soak: bool,
    /// A soak window: `30s`, `5m`, `1h` (default 5m).
    #[arg(long, requires = "soak", value_parser = input::seconds(0.1))]
    pub soak_window: Option<f64>,
    /// A soak rule's limit, `NAME=VALUE` (repeatable): errors, empty_answers, rss_growth_mib,
    /// gpu_growth_mib, tps_retention, ttft_p99_ratio.
    #[arg(long, requires = "soak")]
    pub soak_rule: Vec<String>,
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Run the same workload on a second route and show both side by side.
    #[arg(long)]
    pub compare: Option<String>,
    /// Compare against a saved result (ours or `vllm bench serve`'s).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// No progress bar (it only shows when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}
