//! Ray through its dashboard's REST API (DESIGN.md §9): the node table, cluster usage and the
//! Jobs API (submit, status, stop, logs). Every read is capped, every call has a deadline,
//! and every error names the cluster, the call and the HTTP status.
use super::model::{ClusterJob, ClusterNode, JobStatus, NodeGpu};
use crate::config::ClusterConfig;
use crate::provider::body;
use crate::secret::Secret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Each call's deadline: a dashboard that does not answer in this time counts as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cluster {cluster} ({address}): {call}: {message}")]
pub struct ClusterError {
    pub cluster: String,
    pub address: String,
    /// `GET /api/jobs/`, ...
    pub call: String,
    pub status: Option<u16>,
    pub message: String,
}

/// What a job runs and where: built from a launch profile by the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub submission_id: String,
    /// A shell command line (Ray runs it with a shell).
    pub entrypoint: String,
    pub num_cpus: f64,
    pub num_gpus: f64,
    pub resources: BTreeMap<String, f64>,
    /// Non-secret variables only: Ray shows runtime envs to anyone who reads the dashboard.
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct RayClient {
    name: String,
    base: String,
    http: reqwest::Client,
    token: Option<Secret>,
}

impl std::fmt::Debug for RayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayClient")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl RayClient {
    /// `token_env`, when set, must name a variable that is set: a dashboard behind a proxy
    /// answers 401 to every call otherwise, and the reason would be lost.
    pub fn new(name: &str, cfg: &ClusterConfig) -> Result<Self, String> {
        let token = match &cfg.token_env {
            Some(var) => Some(Secret::from_env(var).ok_or_else(|| {
                format!("cluster {name}: token_env names `{var}`, which is not set")
            })?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("cluster {name}: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            base: cfg.address.trim_end_matches('/').to_string(),
            http,
            token,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn address(&self) -> &str {
        &self.base
    }

    fn err(&self, call: &str, status: Option<u16>, message: impl Into<String>) -> ClusterError {
        ClusterError {
            cluster: self.name.clone(),
            address: self.base.clone(),
            call: call.to_string(),
            status,
            message: message.into(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClusterError> {
        let call = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                format!("no answer within {} s", CALL_TIMEOUT.as_secs())
            } else if e.is_connect() {
                format!("unreachable: {}", root_cause(&e))
            } else {
                root_cause(&e)
            };
            self.err(&call, None, what)
        })?;
        let status = resp.status().as_u16();
        let ok = resp.status().is_success();
        let bytes = body::read_capped(resp, body::MAX_PAGE_BYTES)
            .await
            .map_err(|e| self.err(&call, Some(status), e.message))?;
        if !ok {
            // Ray answers errors with a traceback or a JSON message: keep its last line.
            let text = String::from_utf8_lossy(&bytes);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let last: String = last.chars().take(300).collect();
            return Err(self.err(&call, Some(status), format!("HTTP {status}: {last}")));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.err(&call, Some(status), format!("not JSON: {e}")))
    }

    pub async fn version(&self) -> Result<String, ClusterError> {
        let v = self
            .call(reqwest::Method::GET, "/api/version", None)
            .await?;
        Ok(v["ray_version"].as_str().unwrap_or("?").to_string())
    }

    /// Every node with its totals, what is in use (from the cluster status), and its GPUs.
    pub async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterError> {
        let (summary, status) = tokio::join!(
            self.call(reqwest::Method::GET, "/nodes?view=summary", None),
            self.call(reqwest::Method::GET, "/api/cluster_status", None)
        );
        // Without the status the nodes still show, with nothing in use known.
        Ok(parse_nodes(&summary?, &status.unwrap_or(Value::Null)))
    }

    pub async fn jobs(&self) -> Result<Vec<ClusterJob>, ClusterError> {
        let v = self.call(reqwest::Method::GET, "/api/jobs/", None).await?;
        Ok(parse_jobs(&v))
    }

    pub async fn job(&self, id: &str) -> Result<ClusterJob, ClusterError> {
        let path = format!("/api/jobs/{id}");
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        parse_job(&v).ok_or_else(|| self.err(&format!("GET {path}"), None, "not a job"))
    }

    pub async fn submit(&self, spec: &JobSpec) -> Result<String, ClusterError> {
        let mut body = serde_json::json!({
            "entrypoint": spec.entrypoint,
            "submission_id": spec.submission_id,
            "metadata": spec.metadata,
            "entrypoint_num_cpus": spec.num_cpus,
        });
        if spec.num_gpus > 0.0 {
            body["entrypoint_num_gpus"] = spec.num_gpus.into();
        }
        if !spec.resources.is_empty() {
            body["entrypoint_resources"] = serde_json::json!(spec.resources);
        }
        if !spec.env.is_empty() {
            body["runtime_env"] = serde_json::json!({ "env_vars": spec.env });
        }
        let v = self
            .call(reqwest::Method::POST, "/api/jobs/", Some(&body))
            .await?;
        Ok(v["submission_id"]
            .as_str()
            .unwrap_or(&spec.submission_id)
            .to_string())
    }

    /// Asks Ray to stop the job; true when Ray says it was stopping it.
    pub async fn stop(&self, id: &str) -> Result<bool, ClusterError> {
        let v = self
            .call(reqwest::Method::POST, &format!("/api/jobs/{id}/stop"), None)
            .await?;
        Ok(v["stopped"].as_bool().unwrap_or(false))
    }

    pub async fn logs(&self, id: &str) -> Result<String, ClusterError> {
        let v = self
            .call(reqwest::Method::GET, &format!("/api/jobs/{id}/logs"), None)
            .await?;
        Ok(v["logs"].as_str().unwrap_or("").to_string())
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// `GET /nodes?view=summary` with `GET /api/cluster_status` (its `usageByNode` has what is
/// in use per node; without it nothing is known to be in use).
pub fn parse_nodes(summary: &Value, status: &Value) -> Vec<ClusterNode> {
    let usage = &status["data"]["clusterStatus"]["loadMetricsReport"]["usageByNode"];
    let Some(list) = summary["data"]["summary"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|n| {
            let r = &n["raylet"];
            // A node without an id cannot be told apart from another: not a node to show.
            let id = r["nodeId"].as_str().filter(|i| !i.is_empty())?.to_string();
            let used = &usage[&id];
            let amount = |k: &str| {
                (
                    f(&r["resourcesTotal"][k]).unwrap_or(0.0),
                    used[k][0].as_f64().unwrap_or(0.0),
                )
            };
            let (cpus_total, cpus_used) = amount("CPU");
            let (gpus_total, gpus_used) = amount("GPU");
            let resources = r["resourcesTotal"]
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter(|k| {
                            !matches!(
                                k.as_str(),
                                "CPU"
                                    | "GPU"
                                    | "memory"
                                    | "objectStoreMemory"
                                    | "object_store_memory"
                            )
                        })
                        .map(|k| (k.clone(), amount(k)))
                        .collect()
                })
                .unwrap_or_default();
            let mem = n["mem"].as_array();
            let memory_total_bytes = mem
                .and_then(|m| m.first())
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let available = mem.and_then(|m| m.get(1)).and_then(Value::as_u64);
            let gpus = n["gpus"]
                .as_array()
                .map(|gs| gs.iter().map(parse_gpu).collect())
                .unwrap_or_default();
            Some(ClusterNode {
                id,
                address: n["ip"]
                    .as_str()
                    .or(r["nodeManagerAddress"].as_str())
                    .unwrap_or("")
                    .to_string(),
                hostname: n["hostname"].as_str().map(String::from),
                head: r["isHeadNode"].as_bool().unwrap_or(false),
                alive: r["state"].as_str() == Some("ALIVE"),
                cpus_total,
                cpus_used,
                gpus_total,
                gpus_used,
                memory_total_bytes,
                memory_used_bytes: available
                    .map(|a| memory_total_bytes.saturating_sub(a))
                    .unwrap_or(0),
                resources,
                gpus,
            })
        })
        .collect()
}

/// One GPU in the reporter's format (memory in MB, power in mW).
fn parse_gpu(g: &Value) -> NodeGpu {
    // A reporter's number may be anything: out-of-range sizes saturate, never overflow.
    let mb = |v: &Value| v.as_u64().map(|m| m.saturating_mul(1024 * 1024));
    NodeGpu {
        index: g["index"].as_u64().unwrap_or(0) as u32,
        name: g["name"].as_str().map(String::from),
        uuid: g["uuid"].as_str().map(String::from),
        utilization_pct: g["utilizationGpu"].as_u64().map(|u| u.min(100) as u32),
        memory_used_bytes: mb(&g["memoryUsed"]),
        memory_total_bytes: mb(&g["memoryTotal"]),
        temperature_c: g["temperatureC"].as_u64().map(|t| t as u32),
        power_w: g["powerMw"].as_f64().map(|p| p / 1000.0),
        processes: g["processesPids"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        Some((
                            p["pid"].as_u64()? as u32,
                            mb(&p["gpuMemoryUsage"]).unwrap_or(0),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `GET /api/jobs/`: a list of jobs.
pub fn parse_jobs(v: &Value) -> Vec<ClusterJob> {
    v.as_array()
        .map(|a| a.iter().filter_map(parse_job).collect())
        .unwrap_or_default()
}

/// `GET /api/jobs/{id}`: one job (submission jobs only; drivers started by hand have no
/// submission id and are not ours to manage).
pub fn parse_job(j: &Value) -> Option<ClusterJob> {
    Some(ClusterJob {
        id: j["submission_id"]
            .as_str()
            .filter(|i| !i.is_empty())?
            .to_string(),
        status: JobStatus::parse(j["status"].as_str()?)?,
        message: j["message"].as_str().map(String::from),
        entrypoint: j["entrypoint"].as_str().unwrap_or("").to_string(),
        node_id: j["driver_node_id"].as_str().map(String::from),
        exit_code: j["driver_exit_code"].as_i64().map(|c| c as i32),
        start_ms: j["start_time"].as_u64(),
        end_ms: j["end_time"].as_u64(),
        metadata: j["metadata"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes in MB beyond what bytes can hold saturate (the property test in tests/it/fuzz.rs
    /// once drew such a number and found the multiplication overflowing).
    #[test]
    fn a_gpu_size_out_of_range_saturates() {
        let g = parse_gpu(&serde_json::json!({
            "memoryUsed": u64::MAX,
            "memoryTotal": 80 * 1024,
            "processesPids": [{"pid": 7, "gpuMemoryUsage": u64::MAX / 2}],
        }));
        assert_eq!(g.memory_used_bytes, Some(u64::MAX));
        assert_eq!(g.memory_total_bytes, Some(80 << 30));
        assert_eq!(g.processes, vec![(7, u64::MAX)]);
    }
}
