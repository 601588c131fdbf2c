//! Telemetry: GPUs (NVML locally, DCGM exporters remotely), the host, vLLM's own `/metrics`,
//! and route health, each sampled cheaply and kept in fixed-size histories.
pub mod gpu;
pub mod history;
pub mod host;
pub mod prometheus;
pub mod routes;
pub mod sampler;
pub mod vllm_metrics;
