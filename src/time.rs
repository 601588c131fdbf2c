//! Wall-clock helpers in one place: Unix time as seconds, and the date forms our files and
//! protocols use (RFC 3339, vLLM's `YYYYmmdd-HHMMSS`).
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
/// Unix milliseconds now.
pub fn unix_now_ms() -> u64 {
    (unix_now() * 1000.0) as u64
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whole seconds since the Unix epoch, as OpenAI's `created` fields carry them.
pub fn unix_secs_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (year, month, day, hour, minute, second) in UTC for whole seconds since the epoch.
fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RFC 3339 (UTC, seconds) for a Unix time, for humans and JSON.
pub fn rfc3339(unix: f64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix.max(0.0) as u64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// RFC 3339 with nanoseconds for now, as Ollama writes `created_at`.
pub fn rfc3339_nanos_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, day, h, mi, s) = civil(d.as_secs());
    format!(
        "{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
        d.subsec_nanos()
    )
}

/// `YYYYmmdd-HHMMSS` (UTC) for a Unix time, the form vLLM puts in `date` and file names.
pub fn vllm_date(unix: f64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix.max(0.0) as u64);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_586_449.9), "2026-11-25T06:00:49Z");
        assert_eq!(vllm_date(1_795_586_449.9), "20261125-060049");
        assert!(rfc3339_nanos_now().ends_with('Z'));
        assert_eq!(
            rfc3339_nanos_now().len(),
            "2026-11-25T06:00:49.123456789Z".len()
        );
    }
}
