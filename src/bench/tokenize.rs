//! A tokenizer for building prompts of exact lengths: the server's own (vLLM's `/tokenize` and
//! `/detokenize`), or a `tokenizer.json` read with the `tokenizers` crate for servers without
//! those endpoints (OpenAI, Ollama) and offline use.
use crate::provider::body;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How the prompts' lengths were made, as the result JSON says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The server's `/tokenize`: lengths exact as the server counts them.
    ServerTokenize,
    /// A local `tokenizer.json`: exact for the server if it is the server's tokenizer.
    TokenizerFile,
    /// Common words, about one token each: an estimate (the server's count is reported).
    WordEstimate,
    /// A dataset's own prompts, sent as written (lengths estimated at 4 characters a token).
    Dataset,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ServerTokenize => "server /tokenize",
            Method::TokenizerFile => "tokenizer.json",
            Method::WordEstimate => "word estimate",
            Method::Dataset => "the dataset's prompts",
        }
    }
}

#[derive(Clone)]
pub enum Tokenizer {
    /// vLLM's endpoints at `root` (the server's address, without `/v1`).
    Server {
        root: String,
        model: String,
        http: reqwest::Client,
    },
    Local(Arc<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokenizer::Server { root, model, .. } => write!(f, "Server({root}, {model})"),
            Tokenizer::Local(_) => write!(f, "Local"),
        }
    }
}

/// Each tokenizer call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Tokenizer {
    pub fn method(&self) -> Method {
        match self {
            Tokenizer::Server { .. } => Method::ServerTokenize,
            Tokenizer::Local(_) => Method::TokenizerFile,
        }
    }

    /// Reads a `tokenizer.json` (a file, or a model folder holding one).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        tokenizers::Tokenizer::from_file(&file)
            .map(|t| Tokenizer::Local(Arc::new(t)))
            .map_err(|e| format!("--tokenizer {}: {e}", file.display()))
    }

    /// The server's tokenizer, when it serves `/tokenize` (vLLM does); `Err` says why not.
    pub async fn server(base_url: &str, model: &str) -> Result<Self, String> {
        let root = base_url
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let t = Tokenizer::Server {
            root,
            model: model.to_string(),
            http,
        };
        t.encode("hello").await?;
        Ok(t)
    }

    async fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        let Tokenizer::Server { root, http, .. } = self else {
            return Err("not a server tokenizer".into());
        };
        let url = format!("{root}{path}");
        let resp = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status();
        let bytes = body::read_capped(resp, body::MAX_PAGE_BYTES)
            .await
            .map_err(|e| format!("POST {url}: {}", e.message))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(format!(
                "POST {url}: HTTP {}: {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("POST {url}: not JSON: {e}"))
    }

    /// The token ids of `text`, without special tokens (as `vllm bench serve` counts prompts).
    pub async fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            Tokenizer::Server { model, .. } => {
                let v = self
                    .call(
                        "/tokenize",
                        json!({"model": model, "prompt": text, "add_special_tokens": false}),
                    )
                    .await?;
                ids(&v["tokens"]).ok_or_else(|| format!("/tokenize answered without tokens: {v}"))
            }
            // `encode_fast`: the same ids without each token's offsets, which nothing here reads.
            Tokenizer::Local(t) => t
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| e.to_string()),
        }
    }

    pub async fn decode(&self, tokens: &[u32]) -> Result<String, String> {
        match self {
            Tokenizer::Server { model, .. } => {
                let v = self
                    .call("/detokenize", json!({"model": model, "tokens": tokens}))
                    .await?;
                v["prompt"]
                    .as_str()
                    .map(String::from)
                    .ok_or_else(|| format!("/detokenize answered without a prompt: {v}"))
            }
            Tokenizer::Local(t) => t.decode(tokens, false).map_err(|e| e.to_string()),
        }
    }

    /// Tokens the chat template adds around one user message of `text`, as the server counts
    /// them (`None` for a local tokenizer: it does not apply the server's template).
    pub async fn template_overhead(&self, text: &str) -> Result<Option<u32>, String> {
        let Tokenizer::Server { model, .. } = self else {
            return Ok(None);
        };
        let chat = self
            .call(
                "/tokenize",
                json!({
                    "model": model,
                    "messages": [{"role": "user", "content": text}],
                    "add_generation_prompt": true,
                }),
            )
            .await?;
        let content = self.encode(text).await?.len() as i64;
        let total = chat["count"]
            .as_i64()
            .ok_or_else(|| format!("/tokenize answered without a count: {chat}"))?;
        Ok(Some((total - content).max(0) as u32))
    }
}

fn ids(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().map(|n| n as u32))
        .collect()
}
