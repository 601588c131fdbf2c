//! The Ray dashboard's JSON, from pages recorded from the real Ray 2.60.0
//! (tests/fixtures/ray/README.md), and the client's errors against servers that fail.
use anorag::cluster::ray::{parse_job, parse_jobs, parse_nodes};
use anorag::cluster::{JobStatus, RayClient};
use anorag::config::{ClusterConfig, ClusterKind};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let p = format!("{}/tests/fixtures/ray/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn the_recorded_node_table_reads_as_two_live_nodes() {
    let nodes = parse_nodes(
        &fixture("nodes_summary.json"),
        &fixture("cluster_status.json"),
    );
    assert_eq!(nodes.len(), 2);
    let head = nodes.iter().find(|n| n.head).unwrap();
    let node2 = nodes.iter().find(|n| !n.head).unwrap();
    assert!(head.alive && node2.alive);
    assert_eq!(head.label(), "head");
    assert_eq!(node2.label(), "node2");
    assert_eq!(node2.address, "192.0.2.2");
    assert_eq!((node2.cpus_total, node2.cpus_used), (1.0, 0.5));
    assert_eq!(node2.resources["node2"], (1.0, 1.0));
    assert_eq!((head.gpus_total, head.gpus.len()), (0.0, 0));
    assert_eq!(head.memory_total_bytes, 25_275_973_632);
    assert_eq!(head.memory_used_bytes, 25_275_973_632 - 24_243_769_344);
}

#[test]
fn sixteen_nodes_of_eight_gpus_with_one_dead() {
    let nodes = parse_nodes(
        &fixture("nodes_16x8.json"),
        &fixture("cluster_status_16x8.json"),
    );
    assert_eq!(nodes.len(), 16);
    assert_eq!(nodes.iter().filter(|n| !n.alive).count(), 1);
    assert!(nodes
        .iter()
        .all(|n| n.gpus.len() == 8 && n.gpus_total == 8.0));
    let g = &nodes[1].gpus[3];
    assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(g.utilization_pct, Some(11));
    assert_eq!(g.memory_used_bytes, Some(3000 * 1024 * 1024));
    assert_eq!(g.memory_total_bytes, Some(81_559 * 1024 * 1024));
    assert_eq!(g.processes, [(1003, 3000 * 1024 * 1024)]);
    assert_eq!(g.power_w, Some(300.0));
    assert_eq!(nodes[5].gpus_used, 5.0);
    assert_eq!(nodes[3].label(), "node4");
}

#[test]
fn jobs_in_every_state_the_real_ray_reported() {
    let running = parse_job(&fixture("job_running.json")).unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.profile(), Some("demo"));
    assert_eq!(
        running.node_id.as_deref(),
        Some("5d72e95ebff4816a4999d00ce178d576ac95be924aa6458cfe37184f")
    );
    let pending = parse_job(&fixture("job_pending.json")).unwrap();
    assert_eq!(pending.status, JobStatus::Pending);
    assert!(pending.message.unwrap().contains("waiting for resources"));
    assert_eq!(pending.node_id, None);
    let failed = parse_job(&fixture("job_failed.json")).unwrap();
    assert_eq!(
        (failed.status, failed.exit_code),
        (JobStatus::Failed, Some(137))
    );
    assert!(failed.status.is_terminal());
    let stopped = parse_job(&fixture("job_stopped.json")).unwrap();
    assert_eq!(stopped.status, JobStatus::Stopped);
    assert!(stopped.end_ms.unwrap() > stopped.start_ms.unwrap());
    let all = parse_jobs(&fixture("jobs.json"));
    assert_eq!(all.len(), 3);
    assert_eq!(parse_jobs(&fixture("jobs_100.json")).len(), 100);
    assert!(parse_jobs(&Value::Null).is_empty());
}

fn client(address: &str, token_env: Option<&str>) -> Result<RayClient, String> {
    RayClient::new(
        "farm",
        &ClusterConfig {
            kind: ClusterKind::Ray,
            address: address.into(),
            token_env: token_env.map(String::from),
            host: None,
        },
    )
}

/// A dashboard that answers every call with Ray's own 500 (a traceback).
async fn failing_dashboard() -> String {
    let body = std::fs::read_to_string(format!(
        "{}/tests/fixtures/ray/job_logs_agent_unreachable.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, body) }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn errors_name_the_cluster_the_call_and_the_status() {
    let url = failing_dashboard().await;
    let c = client(&url, None).unwrap();
    let e = c.logs("anorag-fixture-1").await.unwrap_err();
    assert_eq!(e.status, Some(500));
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("cluster farm ({url}): GET /api/jobs/anorag-fixture-1/logs: HTTP 500: aiohttp.client_exceptions.InvalidUrlClientError")),
        "{text}"
    );
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let e = client(&dead, None).unwrap().jobs().await.unwrap_err();
    assert!(e.to_string().contains("GET /api/jobs/: unreachable"), "{e}");
    let e = client(&dead, Some("ANORAG_TEST_UNSET_TOKEN")).unwrap_err();
    assert!(
        e.contains("token_env names `ANORAG_TEST_UNSET_TOKEN`, which is not set"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_head_keeps_the_last_known_state() {
    let url = failing_dashboard().await;
    let c = client(&url, None).unwrap();
    let last = anorag::cluster::ClusterView {
        cluster: "farm".into(),
        nodes: parse_nodes(&fixture("nodes_summary.json"), &Value::Null),
        read_at: Some(1.0),
        ..Default::default()
    };
    let v = anorag::cluster::read(&c, Some(&last)).await;
    assert_eq!(v.nodes.len(), 2, "the last known nodes stay");
    assert_eq!(v.read_at, Some(1.0));
    assert!(v.error.unwrap().contains("HTTP 500"));
}

#[test]
fn every_node_is_a_gpu_source_in_the_fleet_view() {
    use anorag::telemetry::gpu::ray::node_sample;
    use anorag::telemetry::gpu::GpuStatus;
    let nodes = parse_nodes(
        &fixture("nodes_16x8.json"),
        &fixture("cluster_status_16x8.json"),
    );
    let s = node_sample("farm", &nodes[1]);
    assert_eq!(s.source, "farm/node2");
    assert_eq!(s.status, GpuStatus::Ok);
    assert_eq!(s.devices.len(), 8);
    assert_eq!(s.devices[3].utilization_gpu_pct, Some(11));
    assert_eq!(s.devices[3].processes[0].pid, 1003);
    let dead = nodes.iter().find(|n| !n.alive).unwrap();
    assert!(matches!(
        node_sample("farm", dead).status,
        GpuStatus::Unreachable(_)
    ));
    let real = parse_nodes(&fixture("nodes_summary.json"), &Value::Null);
    assert_eq!(node_sample("farm", &real[0]).status, GpuStatus::NoDevices);
}
