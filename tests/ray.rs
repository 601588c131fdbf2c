//! Real-Ray tier: a cluster of two nodes (head and node2) from `../shared/tools/ray`, set up
//! by scripts/test (ANORAG_RAY_ADDRESS). Everything runs in one test, in series, against that
//! one cluster: `cluster --json` sees both nodes, a job pinned to node2 runs there, is found by
//! its metadata, and stops; a job that asks for GPUs the cluster lacks waits, saying why.
mod common;

use anorag::cluster::{JobSpec, JobStatus, RayClient};
use anorag::config::{ClusterConfig, ClusterKind};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn address() -> Option<String> {
    match std::env::var("ANORAG_RAY_ADDRESS") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            common::skipped(
                "real_ray",
                "ANORAG_RAY_ADDRESS is unset; run scripts/test, or `eval \"$(../shared/tools/ray/ensure.sh)\"; eval \"$(../shared/tools/ray/cluster.sh up 2)\"`",
            );
            None
        }
    }
}

async fn until(
    c: &RayClient,
    id: &str,
    what: &str,
    ok: impl Fn(&anorag::cluster::ClusterJob) -> bool,
) -> anorag::cluster::ClusterJob {
    // A guard against a hang, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(j) = c.job(id).await {
            if ok(&j) {
                return j;
            }
            assert!(Instant::now() < deadline, "{id}: never {what}: {j:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ray() {
    let Some(addr) = address() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dashboard.yaml");
    std::fs::write(
        &cfg,
        format!("llm:\n  provider: builtin\n  builtin: {{}}\nclusters:\n  farm: {{kind: ray, address: \"{addr}\", host: 127.0.0.1}}\n"),
    )
    .unwrap();

    // The CLI sees both nodes, the head marked, node2 by its resource.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args(["--config", cfg.to_str().unwrap(), "cluster", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let view = &v["clusters"][0];
    assert_eq!(view["cluster"], "farm");
    assert!(
        view["version"].as_str().unwrap().starts_with("2."),
        "{view}"
    );
    let nodes = view["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 2, "{view}");
    assert_eq!(nodes.iter().filter(|n| n["head"] == true).count(), 1);
    let node2 = nodes
        .iter()
        .find(|n| n["resources"]["node2"].is_array())
        .expect("a node with the node2 resource");
    let node2_id = node2["id"].as_str().unwrap().to_string();

    // The GPU view has every node as a source (none of them has a GPU here).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anorag-tui"))
        .args(["--config", cfg.to_str().unwrap(), "gpu", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources: Vec<&str> = g["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"farm/head") && sources.contains(&"farm/node2"),
        "{sources:?}"
    );

    // A job pinned to node2 runs there and is found again by its metadata.
    let c = RayClient::new(
        "farm",
        &ClusterConfig {
            kind: ClusterKind::Ray,
            address: addr.clone(),
            token_env: None,
            host: Some("127.0.0.1".into()),
        },
    )
    .unwrap();
    let id = format!("anorag-test-{}", std::process::id());
    let meta = BTreeMap::from([("anorag.profile".to_string(), "pinned".to_string())]);
    c.submit(&JobSpec {
        submission_id: id.clone(),
        entrypoint: "echo started; sleep 300".into(),
        num_cpus: 0.5,
        num_gpus: 0.0,
        resources: BTreeMap::from([("node2".to_string(), 1.0)]),
        env: BTreeMap::from([("ANORAG_TEST".to_string(), "1".to_string())]),
        metadata: meta,
    })
    .await
    .unwrap();
    let j = until(&c, &id, "running", |j| j.status == JobStatus::Running).await;
    assert_eq!(j.node_id.as_deref(), Some(node2_id.as_str()));
    let ours = c.jobs().await.unwrap();
    assert!(ours
        .iter()
        .any(|j| j.id == id && j.profile() == Some("pinned")));
    assert!(c.stop(&id).await.unwrap());
    let j = until(&c, &id, "stopped", |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Stopped, "{j:?}");

    // More GPUs than the cluster has: pending, and Ray says it waits for resources.
    let big = format!("anorag-test-big-{}", std::process::id());
    c.submit(&JobSpec {
        submission_id: big.clone(),
        entrypoint: "true".into(),
        num_cpus: 0.1,
        num_gpus: 2.0,
        resources: BTreeMap::new(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let j = c.job(&big).await.unwrap();
    assert_eq!(j.status, JobStatus::Pending, "{j:?}");
    assert!(j
        .message
        .unwrap_or_default()
        .contains("waiting for resources"));
    c.stop(&big).await.unwrap();
}
