//! Per-target circuit breaker: consecutive-failure and failure-rate triggers, growing
//! cooldowns, Retry-After honoured, and a half-open probe instead of blind expiry.
use super::error::{ErrorClass, ProviderError};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitPolicy {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// Outcomes remembered for the failure-rate trigger.
    pub window: usize,
    pub failure_rate: f64,
    pub min_samples: usize,
    pub base_cooldown: Duration,
    pub max_cooldown: Duration,
    /// Cooldown after 401/403 or an exhausted quota: a misconfigured target stays out long.
    pub auth_cooldown: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            window: 20,
            failure_rate: 0.5,
            min_samples: 10,
            base_cooldown: Duration::from_secs(2),
            max_cooldown: Duration::from_secs(60),
            auth_cooldown: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The cooldown is over: the caller must probe the target's health first.
    Probe,
    Rejected {
        until: Instant,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitSnapshot {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub trips: u32,
    /// Milliseconds until an open circuit may be probed.
    pub reopens_in_ms: Option<u64>,
    pub last_error: Option<String>,
    /// The class of the last failure (a gateway answers an open circuit after a 429 with 429).
    pub last_class: Option<ErrorClass>,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { since: Instant },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive: u32,
    trips: u32,
    window: VecDeque<bool>,
    last_error: Option<String>,
    last_class: Option<ErrorClass>,
}

/// A probe that never reported back (its caller was cancelled) stops blocking after this.
const PROBE_LEASE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Circuit {
    policy: CircuitPolicy,
    inner: Mutex<Inner>,
}

impl Circuit {
    pub fn new(policy: CircuitPolicy) -> Self {
        Self {
            policy,
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive: 0,
                trips: 0,
                window: VecDeque::new(),
                last_error: None,
                last_class: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(&self, now: Instant) -> Admission {
        let mut g = self.lock();
        match g.state {
            State::Closed => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected { until },
            State::HalfOpen { since } if now < since + PROBE_LEASE => Admission::Rejected {
                until: now + Duration::from_millis(100),
            },
            _ => {
                g.state = State::HalfOpen { since: now };
                Admission::Probe
            }
        }
    }

    /// True when requests would be turned away right now (for ordering targets).
    pub fn is_open(&self, now: Instant) -> bool {
        match self.lock().state {
            State::Closed => false,
            State::Open { until } => now < until,
            State::HalfOpen { .. } => true,
        }
    }

    pub fn reopens_at(&self) -> Option<Instant> {
        match self.lock().state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    pub fn on_probe(&self, ok: bool, err: Option<&ProviderError>, now: Instant) {
        let mut g = self.lock();
        if ok {
            g.state = State::Closed;
            g.consecutive = 0;
        } else {
            if let Some(e) = err {
                g.last_error = Some(e.to_string());
                g.last_class = Some(e.class);
            }
            self.trip(&mut g, now, None);
        }
    }

    pub fn on_success(&self) {
        let mut g = self.lock();
        g.state = State::Closed;
        g.consecutive = 0;
        g.trips = 0;
        self.remember(&mut g, true);
    }

    pub fn on_failure(&self, e: &ProviderError, now: Instant) {
        if !e.class.counts_against_target() {
            return;
        }
        let mut g = self.lock();
        g.last_error = Some(e.to_string());
        g.last_class = Some(e.class);
        g.consecutive += 1;
        self.remember(&mut g, false);
        let half_open = matches!(g.state, State::HalfOpen { .. });
        match e.class {
            // Nothing listens there: keep requests away at once ("vLLM down -> Ollama").
            ErrorClass::Connect | ErrorClass::ConnectTimeout => self.trip(&mut g, now, None),
            ErrorClass::Auth | ErrorClass::Quota => {
                self.trip(&mut g, now, Some(self.policy.auth_cooldown))
            }
            ErrorClass::RateLimited | ErrorClass::Overloaded if e.retry_after.is_some() => {
                let until = now + e.retry_after.unwrap_or_default();
                let until = match g.state {
                    State::Open { until: u } if u > until => u,
                    _ => until,
                };
                g.state = State::Open { until };
            }
            _ => {
                let n = g.window.len();
                let fails = g.window.iter().filter(|ok| !**ok).count();
                let rate_tripped = n >= self.policy.min_samples
                    && fails as f64 / n as f64 > self.policy.failure_rate;
                if half_open || g.consecutive >= self.policy.failure_threshold || rate_tripped {
                    self.trip(&mut g, now, None);
                }
            }
        }
    }

    fn remember(&self, g: &mut Inner, ok: bool) {
        g.window.push_back(ok);
        while g.window.len() > self.policy.window {
            g.window.pop_front();
        }
    }

    fn trip(&self, g: &mut Inner, now: Instant, fixed: Option<Duration>) {
        g.trips = g.trips.saturating_add(1);
        let cooldown = fixed.unwrap_or_else(|| {
            let factor = 1u32 << (g.trips - 1).min(16);
            (self.policy.base_cooldown * factor).min(self.policy.max_cooldown)
        });
        g.state = State::Open {
            until: now + cooldown,
        };
    }

    pub fn snapshot(&self, now: Instant) -> CircuitSnapshot {
        let g = self.lock();
        let (state, reopens_in_ms) = match g.state {
            State::Closed => (CircuitState::Closed, None),
            State::Open { until } => (
                CircuitState::Open,
                Some(until.saturating_duration_since(now).as_millis() as u64),
            ),
            State::HalfOpen { .. } => (CircuitState::HalfOpen, None),
        };
        CircuitSnapshot {
            state,
            consecutive_failures: g.consecutive,
            trips: g.trips,
            reopens_in_ms,
            last_error: g.last_error.clone(),
            last_class: g.last_class,
        }
    }
}
