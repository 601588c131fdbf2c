//! A 50-request load test against the in-process vLLM simulator, printed as `vllm bench serve`
//! prints its result.
//!
//!     cargo run --example bench
use anorag::bench::{self, report, BenchTarget, Load, Plan, Stop, Workload};
use anorag::config;
use anorag::provider::factory;
use anorag::sim::{self, Flavor, SimConfig};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 20 ms to the first token, then a token every 2 ms, 32 tokens an answer.
    let server = sim::start(SimConfig::new(Flavor::Vllm).model("m").timing(20, 2, 32)).await?;
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      sim: {{base_url: '{}', model: m}}\n",
        server.base_url()
    );
    let router = Arc::new(factory::build(&config::load_str(&yaml, "bench.yaml")?).await?);
    let target = BenchTarget::from_router(router, Some("sim"))?;
    let plan = Plan::new(
        Load::Closed { concurrency: 8 },
        Stop::Requests(50),
        Workload::random(64, 32),
    );
    let results = bench::spawn(target, vec![plan]).done.await??;
    for r in &results {
        print!("{}", report::summary(r));
    }
    Ok(())
}
