//! The shape of `dashboard.yaml`. Unknown keys are errors everywhere.
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The routes and the router: which servers answer, in which order.
    pub llm: LlmConfig,
    /// Launch profiles, by name.
    #[serde(default)]
    pub servers: IndexMap<String, ServerProfile>,
    /// Clusters that run servers for us (Ray today), by name.
    #[serde(default)]
    pub clusters: IndexMap<String, ClusterConfig>,
    /// Remote nodes' GPUs, read from their DCGM exporters.
    #[serde(default)]
    pub gpu_sources: Vec<GpuSourceConfig>,
    /// How often GPUs, the host and the routes are sampled.
    #[serde(default)]
    pub telemetry: TelemetryBlock,
    /// The console's own settings.
    #[serde(default)]
    pub tui: TuiBlock,
    /// The gateway (`anorag-tui gateway`, or a `kind: gateway` profile).
    #[serde(default)]
    pub gateway: GatewayBlock,
    /// Where to look for models besides the Hugging Face and ModelScope caches and Ollama's
    /// store (`anorag-tui models`, the Models pane).
    #[serde(default)]
    pub models: ModelsBlock,
    /// Files (or folders of `*.yaml`) whose `servers:` join this file's, relative to it. The
    /// console keeps profiles saved from its Models pane in `servers.d/`.
    #[serde(default)]
    pub include: Vec<String>,
    /// Where relative paths in the file are resolved (the file's folder).
    #[serde(skip)]
    pub base_dir: std::path::PathBuf,
    /// Where it was read from (the file's absolute path, or `<built-in default>`): cluster
    /// jobs carry it in their metadata, so every shell on this config finds them.
    #[serde(skip)]
    pub file: String,
    /// (variable, value) of every `${VAR}` the environment filled in: such values may be
    /// secrets, so launch specs keep `${VAR}` in their place (see `supervisor::launch`).
    #[serde(skip)]
    pub from_env: Vec<(String, String)>,
}

/// Where models are looked for.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelsBlock {
    /// Folders holding model folders (each with a `config.json`), up to two levels down;
    /// relative to this file.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// The console's own settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuiBlock {
    /// Command name -> key (`stop: X`, `quit: ctrl-q`); see `anorag-tui --help-keys`.
    #[serde(default)]
    pub keys: IndexMap<String, String>,
    /// Lines of each server's log kept in memory (default 5000).
    pub log_lines: Option<usize>,
    /// Shortest time between two frames, in ms (default 33).
    pub frame_ms: Option<u64>,
}

/// `gateway:`: the local OpenAI- and Ollama-compatible endpoint over the router.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayBlock {
    /// `HOST:PORT` (default `127.0.0.1:8090`). Anything but loopback needs `keys_env`.
    pub listen: Option<String>,
    /// Names a client may ask for, and the route each one means (`gpt-4o-mini: tiny_qwen`,
    /// `"qwen2.5:0.5b": tiny_qwen`).
    #[serde(default)]
    pub aliases: IndexMap<String, String>,
    /// The routes clients may reach (default: every route). Fallbacks of an exposed route
    /// are still used; they are not offered by name.
    pub expose: Option<Vec<String>>,
    /// Variable holding the client keys, as `name=key` pairs separated by commas.
    pub keys_env: Option<String>,
    /// Largest request body, in bytes (default 1 MiB).
    pub max_body_bytes: Option<usize>,
    /// Requests answered at once (default 256); more wait in the queue.
    pub max_in_flight: Option<usize>,
    /// Requests waiting for a slot (default 1024); more are refused with 429.
    pub max_queue: Option<usize>,
    /// Longest wait in the queue, in ms (default 30000); then 429.
    pub queue_timeout_ms: Option<u64>,
    /// A client's request head and body must arrive within this, in ms (default 10000).
    pub client_timeout_ms: Option<u64>,
    /// On SIGTERM, in-flight streams may finish for this long, in seconds (default 30).
    pub drain_timeout_s: Option<f64>,
}

/// A DCGM exporter's `/metrics` page (`http://node:9400/metrics`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuSourceConfig {
    /// Shown as the source of its GPUs in the GPU pane.
    pub name: String,
    /// The exporter's `/metrics` page (http or https).
    pub url: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBlock {
    /// GPU and host sampling (default 1000).
    pub interval_ms: Option<u64>,
    /// Route probes, per target, with jitter (default 5000).
    pub probe_interval_ms: Option<u64>,
    /// A route probe's deadline (default 3000).
    pub probe_timeout_ms: Option<u64>,
    /// Read this machine's GPUs through NVML (default true).
    pub local_gpu: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// `vllm serve MODEL ...`
    Vllm,
    /// This program's own simulator (`anorag-tui sim`), for demos and tests.
    Sim,
    /// Any other OpenAI-compatible server, from the argv in `command`.
    Command,
    /// This program's gateway (`anorag-tui gateway`) on this config.
    Gateway,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Vllm => "vllm",
            ServerKind::Sim => "sim",
            ServerKind::Command => "command",
            ServerKind::Gateway => "gateway",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Never,
    OnFailure,
}

/// A YAML scalar taken as text (`env` values, `max_model_len: 32k`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Str(s) => f.write_str(s),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `servers.NAME`: how to launch one server (DESIGN.md §5).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerProfile {
    /// `vllm`, `sim`, `command` or `gateway`.
    pub kind: ServerKind,
    /// The `vllm` command (default: `vllm` on PATH).
    #[serde(default)]
    pub executable: Option<String>,
    /// `kind: command`: the argv of the server.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Hugging Face id or local path.
    #[serde(default)]
    pub model: Option<String>,
    /// The name the server answers to (`--served-model-name`); a route names it as its `model`.
    #[serde(default)]
    pub served_model_name: Option<String>,
    /// Listen address (default `127.0.0.1`).
    #[serde(default)]
    pub host: Option<String>,
    /// Listen port; the readiness check and the route use it.
    pub port: u16,
    /// vLLM's `--dtype` (`auto`, `bfloat16`, `float16`, ...).
    #[serde(default)]
    pub dtype: Option<String>,
    /// vLLM's `--max-model-len`; `32k` and `32768` alike.
    #[serde(default)]
    pub max_model_len: Option<Scalar>,
    /// vLLM's `--gpu-memory-utilization`, a fraction from 0 to 1.
    #[serde(default)]
    pub gpu_memory_utilization: Option<f64>,
    /// vLLM's `--tensor-parallel-size`.
    #[serde(default)]
    pub tensor_parallel_size: Option<u32>,
    /// vLLM's `--pipeline-parallel-size`.
    #[serde(default)]
    pub pipeline_parallel_size: Option<u32>,
    /// vLLM's `--distributed-executor-backend` (`ray`, `mp`).
    #[serde(default)]
    pub distributed_executor_backend: Option<String>,
    /// vLLM's `--enforce-eager` (no CUDA graphs).
    #[serde(default)]
    pub enforce_eager: Option<bool>,
    /// More arguments, as they are; a key or token flag (`--api-key`, `--hf-token`) is refused.
    #[serde(default)]
    pub extra_args: Vec<Scalar>,
    /// Environment of the server; `${VAR}` values stay unexpanded in the state directory.
    #[serde(default)]
    pub env: IndexMap<String, Scalar>,
    /// Variable whose value reaches the server as `VLLM_API_KEY` (never on argv).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// GPU indices, given to the server as `CUDA_VISIBLE_DEVICES`.
    #[serde(default)]
    pub gpus: Option<Vec<u32>>,
    /// The route this server answers.
    #[serde(default)]
    pub route: Option<String>,
    /// Started when the console opens.
    #[serde(default)]
    pub autostart: bool,
    /// `never` (default) or `on-failure`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Crash-loop guard: at most this many restarts within `restart_window` seconds.
    #[serde(default)]
    pub max_restarts: Option<u32>,
    /// Seconds over which `max_restarts` counts.
    #[serde(default)]
    pub restart_window: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default)]
    pub stop_timeout: Option<f64>,
    /// Readiness path (default `/health`; `/v1/models` for `kind: command`).
    #[serde(default)]
    pub health_path: Option<String>,
    /// Run on this cluster (a name under `clusters:`) instead of this machine.
    #[serde(default)]
    pub cluster: Option<String>,
    /// On a cluster: custom resources the job needs, which pin it to nodes that have them
    /// (`{node2: 1}`, or Ray's `node:IP`).
    #[serde(default)]
    pub resources: IndexMap<String, f64>,
    /// On a cluster: CPUs the job's entrypoint holds (default 1).
    #[serde(default)]
    pub num_cpus: Option<f64>,
}

/// `clusters.NAME`: a cluster engine that runs servers (DESIGN.md §9).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `ray` (the only engine today).
    pub kind: ClusterKind,
    /// The Ray dashboard, e.g. `http://head:8265`.
    pub address: String,
    /// Variable holding a bearer token, for a dashboard behind a proxy (never in the file).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Where routes of this cluster's servers connect: the node's address unless set here
    /// (tests pin `127.0.0.1`: every node is this machine).
    #[serde(default)]
    pub host: Option<String>,
}

/// Cluster engines; `kubernetes` is the next one behind the same `clusters:` block.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClusterKind {
    Ray,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProviderName {
    VllmOpenai,
    Openai,
    Ollama,
    MultiOllama,
    Builtin,
}

impl ProviderName {
    pub fn key(self) -> &'static str {
        match self {
            ProviderName::VllmOpenai => "vllm_openai",
            ProviderName::Openai => "openai",
            ProviderName::Ollama => "ollama",
            ProviderName::MultiOllama => "multi_ollama",
            ProviderName::Builtin => "builtin",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Which block's route answers when no route is named.
    pub provider: ProviderName,
    /// OpenAI-compatible servers (vLLM), any number of named routes.
    #[serde(default)]
    pub vllm_openai: Option<VllmOpenAi>,
    /// One Ollama server, the route `ollama`.
    #[serde(default)]
    pub ollama: Option<OllamaBlock>,
    /// Several Ollama servers behind one route, least in flight first.
    #[serde(default)]
    pub multi_ollama: Option<MultiOllama>,
    /// OpenAI's API (or any hosted one), the route `openai`.
    #[serde(default)]
    pub openai: Option<OpenAiBlock>,
    /// The in-process simulator, the route `builtin`.
    #[serde(default)]
    pub builtin: Option<BuiltinBlock>,
    /// Retries, timeouts and circuits: the one owner of retries.
    #[serde(default)]
    pub router: RouterBlock,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VllmOpenAi {
    /// Routes by name.
    pub routes: IndexMap<String, VllmRoute>,
    /// The route asked when none is named (default: the first).
    #[serde(default)]
    pub default_route: Option<String>,
    /// Defaults for every route here.
    #[serde(default)]
    pub params: Params,
    /// Variable holding the key for every route here (servers started with `--api-key`).
    #[serde(default)]
    pub api_key_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VllmRoute {
    /// The server, ending in `/v1`.
    pub base_url: String,
    /// The model name the server answers to.
    pub model: String,
    /// Routes tried in order when this one fails before its first token.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Routes with a larger context to use when this one says the prompt is too long.
    #[serde(default)]
    pub context_fallback: Vec<String>,
    /// Variable holding this route's key (overrides the block's).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// This route's own parameters, over the block's.
    #[serde(default)]
    pub params: Option<Params>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Longest answer, in tokens (at least 1).
    pub max_tokens: Option<u32>,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Seconds for a whole request, fallbacks included.
    pub timeout: Option<f64>,
}

impl Params {
    /// `self` with unset fields taken from `outer`.
    pub fn or(self, outer: Params) -> Params {
        Params {
            temperature: self.temperature.or(outer.temperature),
            max_tokens: self.max_tokens.or(outer.max_tokens),
            top_p: self.top_p.or(outer.top_p),
            timeout: self.timeout.or(outer.timeout),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OllamaBlock {
    /// The Ollama server (no `/v1`), e.g. `http://127.0.0.1:11434`.
    pub base_url: String,
    /// The model, with its tag (`qwen2.5:0.5b`).
    pub model: String,
    /// Routes tried in order when this one fails before its first token.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Sampling and timeout.
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultiOllama {
    /// Base URLs of the Ollama instances (no `/v1`).
    pub instances: Vec<String>,
    /// The model every instance serves.
    pub model: String,
    /// Routes tried in order when every instance fails.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Sampling and timeout.
    #[serde(default)]
    pub params: Params,
}

fn openai_url() -> String {
    "https://api.openai.com/v1".into()
}
fn openai_key_env() -> String {
    "OPENAI_API_KEY".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiBlock {
    /// Default `https://api.openai.com/v1`.
    #[serde(default = "openai_url")]
    pub base_url: String,
    /// The model asked for.
    pub model: String,
    /// The *name* of the variable that holds the key; the key itself never goes in the file.
    #[serde(default = "openai_key_env")]
    pub api_key_env: String,
    /// Routes tried in order when this one fails before its first token.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Sampling and timeout.
    #[serde(default)]
    pub params: Params,
}

fn sim_model() -> String {
    "anorag-sim".into()
}
fn sim_ttft() -> u64 {
    40
}
fn sim_itl() -> u64 {
    15
}
fn sim_tokens() -> u32 {
    48
}

/// A route answered by the in-process simulator, through the real HTTP client.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuiltinBlock {
    /// The name it answers to (default `anorag-sim`).
    #[serde(default = "sim_model")]
    pub model: String,
    /// Time to its first token (default 40).
    #[serde(default = "sim_ttft")]
    pub ttft_ms: u64,
    /// Time between tokens (default 15).
    #[serde(default = "sim_itl")]
    pub itl_ms: u64,
    /// Tokens in an answer (default 48, at least 1).
    #[serde(default = "sim_tokens")]
    pub tokens: u32,
    /// Sampling and timeout.
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouterBlock {
    /// Attempts for one request across its whole chain.
    pub max_attempts: Option<u32>,
    /// To open a connection to a target.
    pub connect_timeout_ms: Option<u64>,
    /// From the request sent to the response headers.
    pub headers_timeout_ms: Option<u64>,
    /// From the headers to the first token.
    pub first_token_timeout_ms: Option<u64>,
    /// Longest silence between two events of a stream.
    pub idle_timeout_ms: Option<u64>,
    /// A whole request, fallbacks included (a route's `params.timeout` overrides it).
    pub total_timeout_s: Option<f64>,
    /// Longest wait for a cooling target before the request fails.
    pub max_wait_ms: Option<u64>,
    /// When a failing target is skipped, and for how long.
    #[serde(default)]
    pub circuit: CircuitBlock,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitBlock {
    /// Consecutive failures that open a target's circuit.
    pub failures: Option<u32>,
    /// How long an open circuit skips its target before a half-open probe.
    pub cooldown_ms: Option<u64>,
    /// The cooldown grows with repeated trips up to this.
    pub max_cooldown_ms: Option<u64>,
}

/// The dialect a target speaks (`provider:` in the config, `--provider` on the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    VllmOpenai,
    Openai,
    Ollama,
    Builtin,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::VllmOpenai => "vllm_openai",
            ProviderKind::Openai => "openai",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Builtin => "builtin",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
