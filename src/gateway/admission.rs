//! Admission: at most `max_in_flight` requests are answered at once, at most `max_queue` wait
//! for a slot, none waits longer than `queue_timeout`. Past that a request is refused (429
//! with `Retry-After`) instead of waiting without bound.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    max_queue: usize,
    queued: Arc<AtomicUsize>,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue was full when the request came.
    QueueFull,
    /// It waited `queue_timeout` without a slot.
    Timeout,
}

impl Refused {
    pub fn message(self, a: &Admission) -> String {
        match self {
            Refused::QueueFull => format!(
                "the gateway is at capacity: {} requests in flight and {} waiting (gateway.max_in_flight, gateway.max_queue); try again shortly",
                a.max_in_flight, a.max_queue
            ),
            Refused::Timeout => format!(
                "no slot freed within {} ms of waiting (gateway.queue_timeout_ms, {} in flight); try again shortly",
                a.timeout.as_millis(),
                a.max_in_flight
            ),
        }
    }
}

/// Leaves the queue count when dropped, also when the waiting request is cancelled.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub fn new(max_in_flight: usize, max_queue: usize, timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            max_queue,
            queued: Arc::new(AtomicUsize::new(0)),
            timeout,
        }
    }

    /// A slot, at once or after a bounded wait.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        let _w = Waiting(self.queued.clone());
        if before >= self.max_queue {
            return Err(Refused::QueueFull);
        }
        match tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refused::Timeout),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.slots.available_permits()
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed).min(self.max_queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_cancelled_wait_leaves_it() {
        let a = Arc::new(Admission::new(1, 1, Duration::from_secs(30)));
        let held = a.enter().await.unwrap();
        assert_eq!(a.in_flight(), 1);
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.enter().await.map(|_| ()) }
        });
        while a.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(a.enter().await.err(), Some(Refused::QueueFull));
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(a.queued(), 0, "a cancelled wait leaves the queue");
        drop(held);
        assert!(a.enter().await.is_ok());
    }

    #[tokio::test]
    async fn a_wait_past_the_timeout_is_refused() {
        let a = Admission::new(1, 4, Duration::from_millis(20));
        let _held = a.enter().await.unwrap();
        assert_eq!(a.enter().await.err(), Some(Refused::Timeout));
        assert_eq!(a.queued(), 0);
    }
}
