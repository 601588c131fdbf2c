//! Watching gateways' traffic: their live feed read (`/anorag/events`), request by request,
//! into a bounded model the console's Traffic pane and `anorag-tui traffic` show. Headless:
//! the reader is reqwest, the model pure.
pub mod model;
pub mod reader;
pub mod row;
pub mod watcher;

/// The feed's wire format is the gateway's own, read back.
pub use crate::gateway::events::{self as wire, Event as FeedEvent};
pub use model::{EventLine, GatewayView, Row};
pub use reader::{follow, snapshot, stats, Update, Want};
pub use watcher::{gateways_of, Watcher};
