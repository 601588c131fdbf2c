//! Who reads the live feed, and how much of it they follow: the feed sends a request's steps
//! down its channel only when some reader follows that request.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// What the live readers ask for: how many want every request step by step, and the most
/// new requests a second that a sampling reader follows. A request no reader follows is
/// counted and kept in the ring, but not sent down the channel: a console sampling 50
/// requests a second costs the gateway 50 requests' events, not all of them.
#[derive(Default)]
pub(super) struct Readers {
    pub(super) full: std::sync::atomic::AtomicUsize,
    pub(super) budget: std::sync::atomic::AtomicU32,
    pub(super) sampled: Mutex<BTreeMap<u64, u32>>,
    pub(super) next: std::sync::atomic::AtomicU64,
    /// (second, requests followed in it)
    pub(super) taken: Mutex<(u64, u32)>,
}

impl Readers {
    pub(super) fn rebudget(&self, sampled: &BTreeMap<u64, u32>) {
        let max = sampled.values().copied().max().unwrap_or(0);
        self.budget.store(max, Ordering::Relaxed);
    }
}

/// A live reader's place among the readers; it goes when the reader does.
pub struct ReaderGuard {
    pub(super) readers: Arc<Readers>,
    pub(super) id: u64,
    pub(super) full: bool,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if self.full {
            self.readers.full.fetch_sub(1, Ordering::Relaxed);
        } else {
            let mut m = self
                .readers
                .sampled
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            m.remove(&self.id);
            self.readers.rebudget(&m);
        }
    }
}
