//! A target given on the command line (`--provider`, `--base-url`, `--model`) instead of a
//! route of the config. Without `--provider`, the server is asked what it speaks.
use crate::config::{self, Config};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdhocProvider {
    #[value(name = "vllm_openai", alias = "vllm-openai", alias = "vllm")]
    VllmOpenai,
    Openai,
    Ollama,
}

/// A target given on the command line instead of the config.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdhocTarget {
    /// Talk to this provider directly instead of a configured route.
    #[arg(long, value_enum)]
    pub provider: Option<AdhocProvider>,
    /// As in the config: OpenAI-compatible URLs end in /v1, Ollama's does not. Without
    /// --provider, the server is asked what it is (and vLLM told from OpenAI by `/version`).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The model to ask for (default: the server's only model, when it serves one).
    #[arg(long, requires = "base_url")]
    pub model: Option<String>,
    /// With --provider openai: the variable holding the key.
    #[arg(long, requires = "provider", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
}

const ADHOC_ROUTE: &str = "cli";

/// A one-route config for `--provider/--base-url/--model`, validated like a file.
pub async fn adhoc_config(t: &AdhocTarget) -> Result<Option<Config>, String> {
    let p = match (t.provider, &t.base_url) {
        (Some(p), _) => p,
        (None, Some(url)) => {
            let (p, why) = detect(url).await?;
            eprintln!("[anorag] --base-url {url}: {} ({why})", provider_name(p));
            p
        }
        (None, None) => return Ok(None),
    };
    let model = match &t.model {
        Some(m) => m.clone(),
        None => only_model(p, t.base_url.as_deref()).await?,
    };
    let url = |def: Option<&str>| {
        t.base_url
            .clone()
            .or(def.map(String::from))
            .ok_or("--provider needs --base-url")
    };
    let yaml = match p {
        AdhocProvider::VllmOpenai => format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      {ADHOC_ROUTE}: {{base_url: {}, model: {}}}\n",
            json!(url(None)?), json!(model)
        ),
        AdhocProvider::Openai => format!(
            "llm:\n  provider: openai\n  openai:\n    base_url: {}\n    model: {}\n    api_key_env: {}\n",
            json!(url(Some("https://api.openai.com/v1"))?), json!(model), json!(t.api_key_env)
        ),
        AdhocProvider::Ollama => format!(
            "llm:\n  provider: ollama\n  ollama:\n    base_url: {}\n    model: {}\n",
            json!(url(None)?), json!(model)
        ),
    };
    config::load_str(&yaml, "<command line>")
        .map(Some)
        .map_err(|e| {
            e.0.iter()
                .map(|e| {
                    let field = e.message.split(": ").next().unwrap_or("");
                    let flag = if field.ends_with("base_url") {
                        "--base-url"
                    } else if field.ends_with("model") {
                        "--model"
                    } else {
                        "--provider"
                    };
                    format!(
                        "{flag}: {}",
                        e.message
                            .split_once(": ")
                            .map_or(e.message.as_str(), |x| x.1)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
}

fn provider_name(p: AdhocProvider) -> &'static str {
    match p {
        AdhocProvider::VllmOpenai => "vllm_openai",
        AdhocProvider::Openai => "openai",
        AdhocProvider::Ollama => "ollama",
    }
}

fn probe_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())
}

/// A JSON answer of at most `cap` bytes, or nothing (refused, an error status, not JSON).
async fn get_json(client: &reqwest::Client, url: &str, cap: usize) -> Option<serde_json::Value> {
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let b = crate::provider::body::read_capped(r, cap).await.ok()?;
    serde_json::from_slice(&b).ok()
}

/// Which dialect a URL speaks: one ending in `/v1` is OpenAI-compatible (vLLM's when its
/// `/version` answers like vLLM's); otherwise Ollama's `/api/version` decides.
pub async fn detect(url: &str) -> Result<(AdhocProvider, String), String> {
    let base = url.trim_end_matches('/');
    let client = probe_client()?;
    if let Some(root) = base.strip_suffix("/v1") {
        return Ok(
            match get_json(&client, &format!("{root}/version"), 64 << 10).await {
                Some(v) if v["version"].is_string() => (
                    AdhocProvider::VllmOpenai,
                    format!(
                        "OpenAI-compatible, and GET /version answered vLLM {}",
                        v["version"].as_str().unwrap_or("?")
                    ),
                ),
                _ => (
                    AdhocProvider::Openai,
                    "the URL ends in /v1 and /version is not vLLM's".into(),
                ),
            },
        );
    }
    match get_json(&client, &format!("{base}/api/version"), 64 << 10).await {
        Some(v) if v["version"].is_string() => Ok((
            AdhocProvider::Ollama,
            format!("GET /api/version answered Ollama {}", v["version"].as_str().unwrap_or("?")),
        )),
        _ => Err(format!(
            "--base-url {url}: not an OpenAI-compatible URL (those end in /v1) and no Ollama answered /api/version; give --provider"
        )),
    }
}

/// The model to ask for when `--model` is not given: the server's only one.
async fn only_model(p: AdhocProvider, url: Option<&str>) -> Result<String, String> {
    let base = url.unwrap_or("").trim_end_matches('/');
    let list = match p {
        AdhocProvider::Ollama => format!("{base}/api/tags"),
        _ => format!("{base}/models"),
    };
    let client = probe_client()?;
    let v = get_json(&client, &list, 4 << 20).await.unwrap_or_default();
    let models: Vec<String> = v["data"]
        .as_array()
        .or(v["models"].as_array())
        .map(|arr| {
            arr.iter()
                .filter_map(|m| m["id"].as_str().or(m["name"].as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    match models.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "--model: the server at {base} listed no model; give --model"
        )),
        many => Err(format!(
            "--model: the server serves {}; say which",
            many.join(", ")
        )),
    }
}
