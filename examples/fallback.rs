//! A router whose primary refuses connections and whose fallback (an in-process vLLM
//! simulator) answers; prints every failed attempt and who served the answer.
//!
//!     cargo run --example fallback
use anorag::config;
use anorag::provider::{factory, ChatRequest};
use anorag::sim::{self, Flavor, SimConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backup = sim::start(SimConfig::new(Flavor::Vllm).model("qwen2_5_0_5b")).await?;
    // A port that was free a moment ago: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let yaml = format!(
        "llm:
  provider: vllm_openai
  vllm_openai:
    default_route: primary
    routes:
      primary: {{base_url: 'http://127.0.0.1:{dead}/v1', model: qwen2_5_0_5b, fallback: [backup]}}
      backup: {{base_url: '{}', model: qwen2_5_0_5b}}
",
        backup.base_url()
    );
    let cfg = config::load_str(&yaml, "fallback.yaml")?;
    let router = factory::build(&cfg).await?;
    let r = router
        .chat(
            None,
            &ChatRequest::prompt("Where did this answer come from?"),
        )
        .await?;
    for a in &r.attempts {
        println!(
            "attempt failed: route {} at {} ({}): {}",
            a.route, a.target, a.class, a.message
        );
    }
    println!(
        "served by route {} at {} (model {})",
        r.served_by.route, r.served_by.base_url, r.served_by.model
    );
    println!("answer: {}", r.response.text);
    Ok(())
}
