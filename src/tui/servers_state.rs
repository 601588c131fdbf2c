//! The Servers pane's state: the servers as last read, the selection, and what this console
//! started or is doing to them.
use crate::supervisor::engine::Op;
use crate::supervisor::ServerStatus;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct ServersView {
    pub list: Vec<ServerStatus>,
    pub selected: usize,
    /// Started by this console (and still worth asking about on quit).
    pub started_here: BTreeSet<String>,
    pub busy: BTreeMap<String, Op>,
    /// (server, host) pairs already said to have left their route's address.
    pub moved_warned: BTreeSet<(String, String)>,
}

impl ServersView {
    /// ` (stopping…)` while an operation on the server is under way, else nothing.
    pub fn busy_note(&self, name: &str) -> String {
        self.busy
            .get(name)
            .map(|op| format!(" ({}…)", op.verb()))
            .unwrap_or_default()
    }
}
