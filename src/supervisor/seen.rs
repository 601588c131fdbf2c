//! What the supervisor engine last read, for everyone else who shows it: one reader per
//! source. The engine reads the server records (on file notifications) and each cluster's
//! nodes and jobs (once a second); the GPU sampler's attribution and its Ray nodes look here
//! instead of reading them again. Until an engine has published, readers fall back to reading
//! themselves (a headless `gpu` command runs no engine).
use crate::cluster::ClusterView;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default, Clone)]
pub struct Seen(Arc<RwLock<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    /// (name, main pid) of every running local server; `None` until an engine has read them.
    running: Option<Vec<(String, i32)>>,
    clusters: BTreeMap<String, ClusterView>,
}

impl Seen {
    pub fn set_running(&self, running: Vec<(String, i32)>) {
        self.write().running = Some(running);
    }

    pub fn running(&self) -> Option<Vec<(String, i32)>> {
        self.read().running.clone()
    }

    pub fn set_cluster(&self, view: &ClusterView) {
        self.write()
            .clusters
            .insert(view.cluster.clone(), view.clone());
    }

    pub fn cluster(&self, name: &str) -> Option<ClusterView> {
        self.read().clusters.get(name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}
