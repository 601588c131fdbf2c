//! The one-call convenience API: `LocalLlm::generate(prompt)` on the configured default route.
use super::router::{RouteFailure, Router};
use super::ChatRequest;
use crate::config::{self, Config};

pub struct LocalLlm {
    router: Router,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalLlmError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("{0}")]
    Build(#[from] super::factory::FactoryError),
    #[error("{0}")]
    Route(#[from] RouteFailure),
}

impl LocalLlm {
    pub async fn new(cfg: &Config) -> Result<Self, LocalLlmError> {
        Ok(Self {
            router: super::factory::build(cfg).await?,
        })
    }

    /// From the config found the usual way (`./dashboard.yaml`, XDG, built-in default).
    pub async fn from_default_config() -> Result<Self, LocalLlmError> {
        let cfg = config::load(&config::find(None))?;
        Self::new(&cfg).await
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Answers `prompt` on the default route, with its retries and fallbacks.
    pub async fn generate(&self, prompt: &str) -> Result<String, LocalLlmError> {
        let r = self.router.chat(None, &ChatRequest::prompt(prompt)).await?;
        Ok(r.response.text)
    }
}
