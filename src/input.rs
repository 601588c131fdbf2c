//! Numbers that people type (flags, form fields, config values), checked before anything uses
//! them: finite, in range, whole where a count is meant. Every message says what was wrong
//! and what is accepted; the caller names the flag, field or `FILE:LINE:COL`.
use std::time::Duration;

/// The longest time any timeout, interval or duration may be: 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;
/// The highest request rate a load test may ask for, per second.
pub const MAX_RATE: f64 = 1_000_000.0;
/// The most requests in flight, or steps of a sweep, a person may ask for.
pub const MAX_CONCURRENCY: u64 = 100_000;

pub fn number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{t}` is not a finite number")),
        Err(_) => Err(format!("`{t}` is not a number")),
    }
}

/// Seconds from `min` to [`MAX_SECONDS`].
pub fn check_seconds(v: f64, min: f64) -> Result<f64, String> {
    if v.is_finite() && (min..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(not_seconds(&v.to_string(), min))
    }
}

/// Seconds, bare or with a unit: `90`, `30s`, `5m`, `1.5h`, `1d`.
pub fn seconds_text(text: &str, min: f64) -> Result<f64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if "smhd".contains(c) => (&t[..i], c),
        _ => (t, 's'),
    };
    let scale = match unit {
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => 1.0,
    };
    number(digits)
        .and_then(|v| check_seconds(v * scale, min))
        .map_err(|_| not_seconds(t, min))
}

fn not_seconds(t: &str, min: f64) -> String {
    format!("`{t}` is not a number of seconds from {min} to {MAX_SECONDS} (30 days; `30s`, `5m`, `2h` also read)")
}

/// A clap value parser for seconds of at least `min`.
pub fn seconds(min: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |t: &str| seconds_text(t, min)
}

/// A request rate: above 0, at most [`MAX_RATE`] (also a clap value parser).
pub fn rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match number(t) {
        Ok(v) if v > 0.0 && v <= MAX_RATE => Ok(v),
        _ => Err(format!(
            "`{t}` is not a rate above 0 and at most {MAX_RATE} requests/s"
        )),
    }
}

/// A whole count from `min` to `max` (`0.5`, `-1`, `1e3` and `inf` are refused).
pub fn count_text(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("`{t}` is not a whole number from {min} to {max}")),
    }
}

/// A clap value parser for whole counts from `min` to `max`.
pub fn count(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync {
    move |t: &str| count_text(t, min, max)
}

/// A clap value parser for concurrencies (1 to [`MAX_CONCURRENCY`]).
pub fn concurrency(t: &str) -> Result<usize, String> {
    count_text(t, 1, MAX_CONCURRENCY).map(|v| v as usize)
}

/// A fraction from 0 to below 1 (`--range-ratio`).
pub fn fraction(t: &str) -> Result<f64, String> {
    match number(t) {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{}` is not a number from 0 to below 1", t.trim())),
    }
}

/// A sampling temperature, 0 to 2.
pub fn temperature(t: &str) -> Result<f32, String> {
    match number(t) {
        Ok(v) if (0.0..=2.0).contains(&v) => Ok(v as f32),
        _ => Err(format!("`{}` is not a temperature from 0 to 2", t.trim())),
    }
}

/// The gamma shape of arrival gaps: above 0; `inf` means evenly spaced.
pub fn burstiness(t: &str) -> Result<f64, String> {
    let t = t.trim();
    match t.parse::<f64>() {
        Ok(v) if v > 0.0 && !v.is_nan() => Ok(v),
        _ => Err(format!(
            "`{t}` is not a burstiness above 0 (1 = Poisson, inf = evenly spaced)"
        )),
    }
}

/// A duration for values already checked, or computed: never panics, whatever the value
/// (NaN and negatives are 0, anything past [`MAX_SECONDS`] is [`MAX_SECONDS`]).
pub fn duration(secs: f64) -> Duration {
    let s = if secs.is_nan() { 0.0 } else { secs };
    Duration::from_secs_f64(s.clamp(0.0, MAX_SECONDS))
}

/// A memory size: `80GiB`, `80G`, `81920MiB`, `80` (GiB); binary units either way.
pub fn size_text(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size (like 80GiB or 24576MiB)"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "g" | "gib" | "gb" => 1u64 << 30,
        "m" | "mib" | "mb" => 1 << 20,
        "t" | "tib" | "tb" => 1 << 40,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use MiB, GiB or TiB)"
            ))
        }
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{text}` must be above zero"));
    }
    Ok((v * mul as f64) as u64)
}

/// `2048`, `32k` (x1000), `32K` (x1024): a token count as vLLM reads `--max-model-len`.
pub fn tokens_text(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1000),
        Some('K') => (&t[..t.len() - 1], 1024),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * mul)
        .ok_or_else(|| format!("`{text}` is not a token count (like 4096, 32k or 32K)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuse_what_no_timer_can_hold() {
        for bad in ["inf", "-inf", "NaN", "1e20", "-1", "", "ten", "0"] {
            assert!(seconds_text(bad, 0.001).is_err(), "{bad}");
        }
        assert_eq!(seconds_text(" 2.5 ", 0.001), Ok(2.5));
        assert_eq!(seconds_text("30s", 0.1), Ok(30.0));
        assert_eq!(seconds_text("5m", 0.1), Ok(300.0));
        assert_eq!(seconds_text("1.5h", 0.1), Ok(5400.0));
        assert_eq!(seconds_text("1d", 0.1), Ok(86_400.0));
        for bad in ["5ms", "m", "31d", "-1m", "2x"] {
            assert!(seconds_text(bad, 0.1).is_err(), "{bad}");
        }
        assert!(seconds_text("inf", 0.1)
            .unwrap_err()
            .contains("`inf` is not a number of seconds from 0.1"));
    }

    #[test]
    fn counts_are_whole_and_in_range() {
        for bad in ["0.5", "0", "-1", "1e3", "inf", "100001", ""] {
            assert!(concurrency(bad).is_err(), "{bad}");
        }
        assert_eq!(concurrency("8"), Ok(8));
        assert_eq!(count_text("0", 0, 5), Ok(0));
    }

    #[test]
    fn rates_temperatures_fractions_burstiness() {
        assert!(rate("0").is_err() && rate("inf").is_err() && rate("1e7").is_err());
        assert_eq!(rate("200"), Ok(200.0));
        assert!(temperature("2.1").is_err() && temperature("NaN").is_err());
        assert!(fraction("1").is_err() && fraction("-0.1").is_err());
        assert_eq!(fraction("0.5"), Ok(0.5));
        assert_eq!(burstiness("inf"), Ok(f64::INFINITY));
        assert!(burstiness("0").is_err() && burstiness("nan").is_err());
    }

    #[test]
    fn duration_never_panics() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -5.0] {
            let _ = duration(v);
        }
        assert_eq!(duration(1.5), Duration::from_millis(1500));
        assert_eq!(duration(f64::INFINITY), Duration::from_secs(2_592_000));
    }
}
