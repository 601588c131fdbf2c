//! The shape of `dashboard.yaml`. Unknown keys are errors everywhere.
use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub llm: LlmConfig,
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
    #[serde(default)]
    pub vllm_openai: Option<VllmOpenAi>,
    #[serde(default)]
    pub ollama: Option<OllamaBlock>,
    #[serde(default)]
    pub multi_ollama: Option<MultiOllama>,
    #[serde(default)]
    pub openai: Option<OpenAiBlock>,
    #[serde(default)]
    pub builtin: Option<BuiltinBlock>,
    #[serde(default)]
    pub router: RouterBlock,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VllmOpenAi {
    pub routes: IndexMap<String, VllmRoute>,
    #[serde(default)]
    pub default_route: Option<String>,
    #[serde(default)]
    pub params: Params,
    /// Variable holding the key for every route here (servers started with `--api-key`).
    #[serde(default)]
    pub api_key_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VllmRoute {
    pub base_url: String,
    pub model: String,
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Routes with a larger context to use when this one says the prompt is too long.
    #[serde(default)]
    pub context_fallback: Vec<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub params: Option<Params>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
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
    pub base_url: String,
    pub model: String,
    #[serde(default)]
    pub fallback: Vec<String>,
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultiOllama {
    /// Base URLs of the Ollama instances (no `/v1`).
    pub instances: Vec<String>,
    pub model: String,
    #[serde(default)]
    pub fallback: Vec<String>,
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
    #[serde(default = "openai_url")]
    pub base_url: String,
    pub model: String,
    /// The *name* of the variable that holds the key; the key itself never goes in the file.
    #[serde(default = "openai_key_env")]
    pub api_key_env: String,
    #[serde(default)]
    pub fallback: Vec<String>,
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
    #[serde(default = "sim_model")]
    pub model: String,
    #[serde(default = "sim_ttft")]
    pub ttft_ms: u64,
    #[serde(default = "sim_itl")]
    pub itl_ms: u64,
    #[serde(default = "sim_tokens")]
    pub tokens: u32,
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouterBlock {
    pub max_attempts: Option<u32>,
    pub connect_timeout_ms: Option<u64>,
    pub headers_timeout_ms: Option<u64>,
    pub first_token_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub total_timeout_s: Option<f64>,
    /// Longest wait for a cooling target before the request fails.
    pub max_wait_ms: Option<u64>,
    #[serde(default)]
    pub circuit: CircuitBlock,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitBlock {
    pub failures: Option<u32>,
    pub cooldown_ms: Option<u64>,
    pub max_cooldown_ms: Option<u64>,
}
