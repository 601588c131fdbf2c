//! anorag-tui: the engines under the console (providers and routing, simulator, config),
//! usable headless from the command line and from other programs.
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod format;
pub mod gateway;
pub mod histogram;
pub mod input;
pub mod models;
pub mod procfs;
pub mod protocol;
pub mod provider;
pub mod report;
pub mod secret;
pub mod session;
pub mod sim;
pub mod supervisor;
pub mod telemetry;
pub mod time;
pub mod traffic;
pub mod tui;
