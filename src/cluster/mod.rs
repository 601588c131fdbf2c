//! Clusters that run servers for us (DESIGN.md §9). Ray today, through its dashboard's REST
//! API; Kubernetes would be a second engine behind the same `clusters:` block and the same
//! model (nodes, GPUs, jobs).
pub mod model;
pub mod ray;

pub use model::{
    ClusterJob, ClusterNode, ClusterView, JobStatus, NodeGpu, META_CONFIG, META_PROFILE,
};
pub use ray::{ClusterError, JobSpec, RayClient};

/// Reads a cluster once: version, nodes and jobs. A failure keeps `last`'s nodes and jobs and
/// says why, so a view shows the last known state of an unreachable head.
pub async fn read(client: &RayClient, last: Option<&ClusterView>) -> ClusterView {
    let (version, nodes, jobs) = tokio::join!(client.version(), client.nodes(), client.jobs());
    let mut v = last.cloned().unwrap_or_else(|| ClusterView {
        cluster: client.name().to_string(),
        address: client.address().to_string(),
        ..ClusterView::default()
    });
    match (version, nodes, jobs) {
        (Ok(ver), Ok(n), Ok(j)) => {
            v.version = Some(ver);
            v.nodes = n;
            v.jobs = j;
            v.error = None;
            v.read_at = Some(crate::time::unix_now());
        }
        (a, b, c) => {
            v.error = [a.err(), b.err(), c.err()]
                .into_iter()
                .flatten()
                .next()
                .map(|e| e.to_string());
        }
    }
    v
}
