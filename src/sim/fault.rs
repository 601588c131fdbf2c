//! Fault specs for the simulator: `status=503,rate=0.2,retry_after=2`, `reset,after=3`,
//! `truncate,after=3`,
//! `stall,after=2[,ms=5000]`, `malformed,after=1`, `oversize,after=1`, `slow_headers,ms=1500`,
//! `refuse[,for_ms=3000]`, `linger` (keeps generating after its client left). Every fault takes `rate=` (default 1) and `count=` (at most N times).
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status (and a Retry-After header, in seconds, when given).
    Status { code: u16, retry_after: Option<f64> },
    /// Break the connection after `after` content chunks.
    Reset { after: u32 },
    /// End the body cleanly after `after` content chunks, without the stream's terminator
    /// (`[DONE]`, Ollama's `done: true` line).
    Truncate { after: u32 },
    /// Stop sending after `after` content chunks, for `ms` (forever when unset).
    Stall { after: u32, ms: Option<u64> },
    /// Send a chunk of broken JSON in place of content chunk number `after`.
    Malformed { after: u32 },
    /// Send 2 MiB of one unfinished event (or line) in place of content chunk `after`.
    Oversize { after: u32 },
    /// Hold the response headers back.
    SlowHeaders { ms: u64 },
    /// Close the listening socket so connections are refused (for `for_ms` after start).
    Refuse { for_ms: Option<u64> },
    /// A stream whose client leaves keeps generating to its end (counted as running, as a
    /// server that missed the disconnect would): the orphan a gateway must not leave.
    Linger,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub rate: f64,
    pub count: Option<u64>,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            rate: 1.0,
            count: None,
        }
    }
    pub fn rate(mut self, r: f64) -> Self {
        self.rate = r;
        self
    }
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut kind: Option<&str> = None;
        let mut code: Option<u16> = None;
        let (mut rate, mut count, mut after, mut ms, mut retry_after, mut for_ms) =
            (1.0f64, None, None, None, None, None);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            let num = |v: Option<&str>| -> Result<f64, String> {
                v.ok_or_else(|| format!("`{k}` needs a value"))?
                    .parse::<f64>()
                    .map_err(|_| format!("`{k}`: `{}` is not a number", v.unwrap_or("")))
            };
            match k {
                "status" => {
                    kind = Some("status");
                    let c = num(v)? as u16;
                    if !(400..600).contains(&c) {
                        return Err(format!("status {c} is not an error status (400-599)"));
                    }
                    code = Some(c);
                }
                "reset" | "truncate" | "stall" | "malformed" | "oversize" | "slow_headers"
                | "refuse" | "linger"
                    if v.is_none() =>
                {
                    kind = Some(k)
                }
                "rate" => {
                    rate = num(v)?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(format!("rate {rate} is outside 0..1"));
                    }
                }
                "count" => count = Some(num(v)? as u64),
                "after" => after = Some(num(v)? as u32),
                "ms" => ms = Some(num(v)? as u64),
                "retry_after" => retry_after = Some(num(v)?),
                "for_ms" => for_ms = Some(num(v)? as u64),
                _ => return Err(format!("unknown fault part `{part}`")),
            }
        }
        let kind = match kind {
            Some("status") => FaultKind::Status {
                code: code.unwrap_or(500),
                retry_after,
            },
            Some("reset") => FaultKind::Reset {
                after: after.unwrap_or(0),
            },
            Some("truncate") => FaultKind::Truncate {
                after: after.unwrap_or(0),
            },
            Some("stall") => FaultKind::Stall {
                after: after.unwrap_or(0),
                ms,
            },
            Some("malformed") => FaultKind::Malformed {
                after: after.unwrap_or(0),
            },
            Some("oversize") => FaultKind::Oversize {
                after: after.unwrap_or(0),
            },
            Some("slow_headers") => FaultKind::SlowHeaders {
                ms: ms.ok_or("slow_headers needs ms=N")?,
            },
            Some("refuse") => FaultKind::Refuse { for_ms },
            Some("linger") => FaultKind::Linger,
            _ => {
                return Err(format!(
                    "`{s}`: say which fault: status=CODE, reset, truncate, stall, malformed, oversize, slow_headers, refuse or linger"
                ))
            }
        };
        Ok(Fault { kind, rate, count })
    }
}

impl Plan {
    /// Waits until content chunk `i` is due, then applies the faults that strike before it:
    /// a reset (the error breaks the connection) or a stall. Waiting first means every chunk
    /// before `i` has been written when the fault strikes, so "after K" delivers exactly K.
    pub async fn before_chunk(
        &self,
        i: u32,
        due: std::time::Instant,
        stalled: &mut bool,
    ) -> Result<(), std::io::Error> {
        tokio::time::sleep_until(due.into()).await;
        if self.reset_after == Some(i) {
            // The chunks before it were handed to the HTTP layer, not yet written: a moment for
            // them to leave, so a busy machine still delivers exactly K before the break.
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ));
        }
        if let Some((after, ms)) = self.stall_after {
            if after == i && !*stalled {
                *stalled = true;
                match ms {
                    Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
                    None => std::future::pending::<()>().await,
                }
            }
        }
        Ok(())
    }
}

/// What the faults decided for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub status: Option<(u16, Option<f64>)>,
    pub reset_after: Option<u32>,
    pub truncate_after: Option<u32>,
    pub stall_after: Option<(u32, Option<u64>)>,
    pub malformed_at: Option<u32>,
    pub oversize_at: Option<u32>,
    pub slow_headers_ms: Option<u64>,
    pub linger: bool,
}

/// What an `oversize` fault sends: more than any client should hold for one event.
pub const OVERSIZE_BYTES: usize = 2 << 20;
