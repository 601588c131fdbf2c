//! The load test (DESIGN.md §7): `vllm bench serve`'s metric definitions, closed and open
//! loop, sweeps, goodput, comparison, and a live API for the console.
pub mod arrivals;
mod client_health;
pub mod conversation;
mod dispatch;
pub mod dist;
pub mod exact;
pub mod find_max;
pub mod plan;
pub mod prepare;
pub mod recorder;
pub mod report;
mod request;
pub mod result;
pub mod runner;
pub mod server_metrics;
pub mod soak;
pub mod tokenize;
pub mod words;
pub mod workload;

pub use plan::HttpClient;
pub use recorder::Slo;
pub use result::BenchResult;
pub use runner::{BenchTarget, Control, Load, MemoryProbe, Phase, Plan, Progress, Stop};
pub use workload::Workload;

use tokio::sync::{mpsc, watch};

/// A run in the background: watch its progress, steer it, await its result.
pub struct BenchHandle {
    pub progress: watch::Receiver<Progress>,
    pub control: mpsc::Sender<Control>,
    pub done: tokio::task::JoinHandle<Result<Vec<BenchResult>, String>>,
    /// Which step of a sweep is running (0 for a single run).
    pub step: watch::Receiver<usize>,
}

/// One run per plan, in order (a sweep), on the same target.
pub fn spawn(target: BenchTarget, plans: Vec<Plan>) -> BenchHandle {
    let (ptx, prx) = watch::channel(Progress::default());
    let (ctx, mut crx) = mpsc::channel::<Control>(32);
    let (stx, srx) = watch::channel(0usize);
    let done = tokio::spawn(async move {
        let mut out = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let _ = stx.send(i);
            // Each step gets its own control channel; ours forwards into it.
            let (tx, rx) = mpsc::channel(32);
            let run = runner::run(&target, plan, rx, ptx.clone());
            tokio::pin!(run);
            let mut cancelled = false;
            let result = loop {
                tokio::select! {
                    r = &mut run => break r?,
                    c = crx.recv(), if !cancelled => {
                        let c = c.unwrap_or(Control::Cancel);
                        cancelled = c == Control::Cancel;
                        let _ = tx.send(c).await;
                    }
                }
            };
            out.push(result);
            if cancelled {
                break;
            }
        }
        Ok(out)
    });
    BenchHandle {
        progress: prx,
        control: ctx,
        done,
        step: srx,
    }
}
