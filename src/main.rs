use anorag::cli;

// A load generator and a gateway allocate per request and per chunk; glibc's allocator was a
// quarter of the load test's CPU (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 3's defaults keep memory it could give back: at 1,000 streams the gateway peaked
/// at 78 MiB with them, 42 MiB with arenas committed on demand and freed pages purged at once
/// (glibc: 46 MiB), for about the same CPU (`scripts/bench-gateway`, section 5). The numbers
/// are `mi_option_arena_eager_commit` and `mi_option_purge_delay` in mimalloc 3's
/// `mi_option_e` (libmimalloc-sys 0.1.49 builds mimalloc 3).
extern "C" fn allocator_options() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option is a plain store mimalloc reads on its next use.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Terminal operations console for LLM serving with vLLM (and Ollama / OpenAI).
#[derive(Parser)]
#[command(name = "anorag-tui", version, about)]
struct Cli {
    /// Configuration file (default: ./dashboard.yaml, then $XDG_CONFIG_HOME/anorag-tui/dashboard.yaml,
    /// then the built-in default).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The console only watches: no starting or stopping servers, no load tests.
    #[arg(long)]
    read_only: bool,
    /// Leave profiles with `autostart: true` stopped (a config is code: it runs commands).
    #[arg(long)]
    no_autostart: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ask a route a question and stream the answer to stdout.
    Chat(cli::chat::ChatArgs),
    /// Probe every route once: up/down, latency, models, vLLM's own numbers, circuit.
    Routes(cli::routes::RoutesArgs),
    /// GPUs on this machine (NVML) and remote nodes (DCGM exporters).
    Gpu(cli::gpu::GpuArgs),
    /// The models on this machine (Hugging Face and ModelScope caches, models.paths, Ollama's
    /// store), and `models fit MODEL`: whether one fits before it starts.
    Models(cli::models::ModelsArgs),
    /// Servers, routes and GPUs in one view.
    Status(cli::status::StatusArgs),
    /// Clusters (Ray): nodes with their CPUs, memory and GPUs, and every job.
    Cluster(cli::cluster::ClusterArgs),
    /// Load test with `vllm bench serve`'s metrics: closed or open loop, sweeps, goodput.
    Bench(Box<cli::bench::BenchArgs>),
    /// Saved results as one self-contained HTML report (inline SVG charts, no script, no
    /// network), or each chart as a PNG too.
    Report(cli::report::ReportArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        cmd: cli::config_check::ConfigCmd,
    },
    /// Run the built-in simulator (vLLM, OpenAI or Ollama flavour) in the foreground.
    Sim(cli::sim::SimArgs),
    /// The gateway: one local OpenAI- and Ollama-compatible endpoint over this config's
    /// routes, with their fallback, in the foreground.
    Gateway(cli::gateway::GatewayArgs),
    /// What the gateways carry: load, errors, fallbacks, routes, recent requests, events.
    Traffic(cli::traffic::TrafficArgs),
    /// Start, stop, restart and watch vLLM (and other) servers from launch profiles.
    Server {
        #[command(subcommand)]
        cmd: cli::server::ServerCmd,
    },
    /// Shell completions: `anorag-tui completions bash > /etc/bash_completion.d/anorag-tui`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: keeps one server (started by `server start`).
    #[command(name = "__monitor", hide = true)]
    Monitor(cli::server::MonitorArgs),
}

// Before the first allocation (Rust's runtime allocates before `main`), so that the first
// arena is reserved with them too: the loader runs `.init_array` before the runtime starts.
#[used]
#[link_section = ".init_array"]
static ALLOCATOR_OPTIONS: extern "C" fn() = allocator_options;

fn main() -> ExitCode {
    let args = Cli::parse();
    // The monitor forks to detach; that must happen before any runtime thread exists.
    if let Some(Cmd::Monitor(m)) = &args.cmd {
        return anorag::supervisor::monitor::main(&m.state_dir, &m.name, &m.run_id);
    }
    // Commands that print for a pipe end quietly when the reader goes (`status | head`),
    // as Unix tools do, instead of panicking on EPIPE. Sockets are unaffected: they write
    // with MSG_NOSIGNAL.
    if !matches!(args.cmd, None | Some(Cmd::Sim(_)) | Some(Cmd::Gateway(_))) {
        // SAFETY: setting a signal disposition before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    cli::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = args.config.as_deref();
    rt.block_on(async move {
        match args.cmd {
            Some(Cmd::Chat(a)) => cli::chat::run(config, a).await,
            Some(Cmd::Routes(a)) => cli::routes::run(config, a).await,
            Some(Cmd::Gpu(a)) => cli::gpu::run(config, a).await,
            Some(Cmd::Models(a)) => cli::models::run(config, a).await,
            Some(Cmd::Status(a)) => cli::status::run(config, a).await,
            Some(Cmd::Cluster(a)) => cli::cluster::run(config, a).await,
            Some(Cmd::Bench(a)) => cli::bench::run(config, *a).await,
            Some(Cmd::Report(a)) => cli::report::run(a),
            Some(Cmd::Config { cmd }) => cli::config_check::run(config, cmd),
            Some(Cmd::Sim(a)) => cli::sim::run(a).await,
            Some(Cmd::Gateway(a)) => cli::gateway::run(config, a).await,
            Some(Cmd::Traffic(a)) => cli::traffic::run(config, a).await,
            Some(Cmd::Server { cmd }) => cli::server::run(config, cmd).await,
            Some(Cmd::Monitor(_)) => ExitCode::FAILURE,
            Some(Cmd::Completions { shell }) => {
                clap_complete::generate(
                    shell,
                    &mut <Cli as clap::CommandFactory>::command(),
                    "anorag-tui",
                    &mut std::io::stdout(),
                );
                ExitCode::SUCCESS
            }
            None => anorag::tui::run(config, args.read_only, args.no_autostart).await,
        }
    })
}
