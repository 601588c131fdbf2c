//! `LocalLlm::generate` on the shipped `dashboard.yaml`: one call, with the router's retries and
//! fallbacks (vLLM down -> Ollama -> the built-in simulator), so it answers on a machine with
//! no GPU and no vLLM.
//!
//!     cargo run --example chat -- "What does the KV cache hold?"
use anorag::config;
use anorag::provider::LocalLlm;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Say hello in five words.".to_string());
    let cfg = config::load_str(config::DEFAULT_YAML, "dashboard.yaml")?;
    let llm = LocalLlm::new(&cfg).await?;
    let answer = llm.generate(&prompt).await?;
    println!("{answer}");
    Ok(())
}
