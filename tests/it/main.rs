//! The integration tests: one binary, a module per area (matklad's "Delete Cargo Integration
//! Tests": one link of the library instead of one per file). A tier is picked by name:
//! `cargo test --test it real_vllm::`, `cargo test --test it tui::`.
//!
//! Tiers that need something installed (the real vLLM, a Ray cluster, the gateway's Python
//! clients) skip with a line in `ANORAG_SKIP_LOG` when it is absent; `scripts/test` sets them
//! up and fails a run where a tier that was set up skipped.
mod common;

mod bench;
mod chaos;
mod cli;
mod cluster;
mod cluster_jobs;
mod config;
mod docs;
mod exact_prompts;
mod examples;
mod fuzz;
mod gateway;
mod layers;
mod lean_client;
mod models;
mod models_fit;
mod parsers;
mod providers;
mod ray;
mod real_vllm;
mod real_vllm_models;
mod real_vllm_soak;
mod real_vllm_stack;
mod report;
mod router;
mod soak;
mod supervisor;
mod telemetry;
mod tui;
mod tui_models;
mod tui_pty;
mod tui_soak;
