//! What reaches `update` (keys and engine events) and what it asks the engines to do.
use crate::bench::{BenchResult, Control, Plan, Progress};
use crate::provider::ChatRequest;
use crate::session::ChatEvent;
use crate::supervisor::engine::{Op, SupEvent};
use crate::telemetry::routes::RouteTable;
use crate::telemetry::sampler::{GpuView, HostView};
use crossterm::event::KeyEvent;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    /// The clock moved (Unix seconds).
    Tick(f64),
    Sup(SupEvent),
    Gpu(Box<GpuView>),
    Host(Box<HostView>),
    Routes(Box<RouteTable>),
    Chat(ChatEvent),
    BenchProgress(u64, Box<Progress>),
    BenchDone(u64, Result<Vec<BenchResult>, String>),
    /// A file was written (or not).
    Saved(Result<String, String>),
    BaselineLoaded(Result<Box<BenchResult>, String>),
    /// The gateways' traffic as last published.
    Traffic(std::sync::Arc<Vec<crate::traffic::GatewayView>>),
    /// The models found on this machine, and when (Unix seconds).
    Models(Box<Vec<crate::models::Model>>, f64),
    /// A background task panicked (message, place, thread); the console goes on.
    EnginePanic(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Server(Op, String),
    Probe(Option<String>),
    ChatSend {
        id: u64,
        route: String,
        req: ChatRequest,
    },
    ChatCancel(u64),
    BenchStart {
        id: u64,
        route: String,
        plan: Box<Plan>,
    },
    BenchControl(Control),
    Save {
        path: PathBuf,
        contents: String,
    },
    /// A load-test document written as an HTML report.
    Report {
        path: PathBuf,
        name: String,
        doc: Box<serde_json::Value>,
    },
    LoadBaseline(PathBuf),
    /// Look for models (the Models pane).
    ScanModels,
    /// Start a server from the launch form (a profile made on the spot).
    Launch(Box<crate::config::save::NewProfile>),
    /// Keep the launch form as a profile beside the config (and show it in Servers).
    SaveProfile(Box<crate::config::save::NewProfile>),
    /// Lines for the console's own log (the traffic's events).
    Log(Vec<String>),
    /// End the console; stop these servers first.
    Quit {
        stop: Vec<String>,
    },
}
