//! Targets and how a route picks among several (the Ollama pool): healthy before cooling,
//! model already loaded before cold, least in flight first, config order on ties.
use super::circuit::Circuit;
use super::Provider;
use crate::protocol::same_model;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const RESIDENCY_UNKNOWN: u8 = 0;
const RESIDENCY_LOADED: u8 = 1;
const RESIDENCY_COLD: u8 = 2;

pub struct Target {
    pub route: String,
    /// Position in the route's configuration, for stable ordering.
    pub index: usize,
    pub provider: Arc<dyn Provider>,
    pub circuit: Arc<Circuit>,
    in_flight: Arc<AtomicUsize>,
    residency: AtomicU8,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("route", &self.route)
            .field("url", &self.provider.base_url())
            .field("model", &self.provider.model())
            .finish()
    }
}

impl Target {
    pub fn new(
        route: &str,
        index: usize,
        provider: Arc<dyn Provider>,
        circuit: Arc<Circuit>,
        in_flight: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            route: route.to_string(),
            index,
            provider,
            circuit,
            in_flight,
            residency: AtomicU8::new(RESIDENCY_UNKNOWN),
        }
    }

    /// `kind url (model)`, as shown in attempts and tables.
    pub fn label(&self) -> String {
        format!(
            "{} {} ({})",
            self.provider.kind(),
            self.provider.base_url(),
            self.provider.model()
        )
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the guard is dropped (a stream holds it to its end).
    pub fn track(&self) -> InFlightGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.in_flight.clone())
    }

    /// `Some(true)` when the server said the model is loaded, `None` when unknown.
    pub fn model_loaded(&self) -> Option<bool> {
        match self.residency.load(Ordering::Relaxed) {
            RESIDENCY_LOADED => Some(true),
            RESIDENCY_COLD => Some(false),
            _ => None,
        }
    }

    /// Asks the server which models are loaded (Ollama `/api/ps`) and remembers the answer.
    pub async fn refresh_residency(&self) {
        if let Some(models) = self.provider.loaded_models().await {
            let loaded = models.iter().any(|m| same_model(m, self.provider.model()));
            self.residency.store(
                if loaded {
                    RESIDENCY_LOADED
                } else {
                    RESIDENCY_COLD
                },
                Ordering::Relaxed,
            );
        }
    }
}

pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The order in which a route tries its targets right now. Ties in everything else go
/// round-robin from `turn`, so an idle pool still spreads its load (and finds a dead member).
pub fn order(targets: &[Arc<Target>], now: Instant, turn: usize) -> Vec<Arc<Target>> {
    let mut v: Vec<_> = targets.to_vec();
    let n = v.len();
    if n > 1 {
        v.sort_by_key(|t| {
            let cold = match t.model_loaded() {
                Some(true) => 0u8,
                None => 1,
                Some(false) => 2,
            };
            let rotated = (t.index + n - turn % n) % n;
            (t.circuit.is_open(now), cold, t.in_flight(), rotated)
        });
    }
    v
}
