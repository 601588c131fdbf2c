use crate::secret::Secret;
use crate::sim::{self, Fault, Flavor, SimConfig};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    #[arg(long, value_enum, default_value = "vllm")]
    pub flavor: Flavor,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed on start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = 40)]
    pub ttft_ms: u64,
    #[arg(long, default_value_t = 15)]
    pub itl_ms: u64,
    /// Tokens per answer (fewer when the request's max_tokens is lower).
    #[arg(long, default_value_t = 48)]
    pub tokens: u32,
    #[arg(long, default_value_t = 2048)]
    pub max_model_len: u32,
    /// e.g. `status=503,rate=0.2,retry_after=2`, `reset,after=3`, `stall,after=2`,
    /// `malformed,after=1`, `slow_headers,ms=1500`, `refuse,for_ms=3000`. Repeatable.
    #[arg(long = "fault", value_parser = parse_fault)]
    pub faults: Vec<Fault>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// At most N requests generate at once; the rest wait (vLLM's --max-num-seqs): latency
    /// then grows with load past N, as on a real server.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_running: Option<u32>,
    /// A `tokenizer.json` (or a model folder with one) for `/tokenize` and the prompt counts
    /// (default: a word tokenizer).
    #[arg(long)]
    pub tokenizer: Option<std::path::PathBuf>,
    /// Soak tests: hold this many MiB more every minute, never freed.
    #[arg(long, default_value_t = 0.0)]
    pub leak_mib_per_min: f64,
    /// Soak tests: the time to first token grows by this many ms every minute of uptime.
    #[arg(long, default_value_t = 0.0)]
    pub slowdown_per_min: f64,
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
}

pub async fn run(a: SimArgs) -> ExitCode {
    let mut cfg = SimConfig::new(a.flavor);
    if let Some(m) = &a.model {
        cfg.model = m.clone();
    }
    cfg.host = a.host.clone();
    cfg.port = a.port;
    cfg.ttft = Duration::from_millis(a.ttft_ms);
    cfg.itl = Duration::from_millis(a.itl_ms);
    cfg.tokens = a.tokens;
    cfg.max_model_len = a.max_model_len;
    cfg.faults = a.faults.clone();
    cfg.seed = a.seed;
    cfg.max_running = a.max_running;
    cfg.leak_mib_per_min = a.leak_mib_per_min.max(0.0);
    cfg.slowdown_ms_per_min = a.slowdown_per_min.max(0.0);
    if let Some(t) = &a.tokenizer {
        match crate::sim::tokenize::SimTokenizer::from_file(t) {
            Ok(t) => cfg.tokenizer = t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    cfg.record_requests = false;
    // Like vLLM: the key comes from VLLM_API_KEY in the environment, never from argv.
    if a.flavor != Flavor::Ollama {
        cfg.api_key = Secret::from_env("VLLM_API_KEY");
    }
    let model = cfg.model.clone();
    let handle = match sim::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: sim: cannot listen on {}:{}: {e}", a.host, a.port);
            return ExitCode::from(1);
        }
    };
    println!(
        "anorag-tui sim: {} flavour serving `{model}` on {} (ttft {} ms, itl {} ms, {} tokens)",
        format!("{:?}", a.flavor).to_lowercase(),
        handle.base_url(),
        a.ttft_ms,
        a.itl_ms,
        a.tokens
    );
    super::until_terminated().await;
    println!("anorag-tui sim: shutting down");
    ExitCode::SUCCESS
}
