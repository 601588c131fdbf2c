//! Numbers as operators read them, shared by the CLI and the console.

/// `512 MiB`, `12.3 GiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `12.1/79.6 GiB` (both in the unit of the total).
pub fn bytes_of(used: u64, total: u64) -> String {
    let gib = (1u64 << 30) as f64;
    if total as f64 >= gib {
        format!("{:.1}/{:.1} GiB", used as f64 / gib, total as f64 / gib)
    } else {
        let mib = (1u64 << 20) as f64;
        format!("{:.0}/{:.0} MiB", used as f64 / mib, total as f64 / mib)
    }
}

/// `42s`, `3m05s`, `2h14m`, `3d04h`.
pub fn duration_s(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Milliseconds with sensible precision: `0.42 ms`, `12.3 ms`, `1234 ms`.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// An optional value, or `-`.
pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// Cuts `s` to `n` characters, marking the cut with `…`.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else if n == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

/// A number without trailing zeros: `4`, `37.5`, `12.34`.
pub fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The byte index `i` (at most `s.len()`) moved back to the start of the character it falls in:
/// a place where `s` may be cut (a job log read again, grown by a part of a character).
pub fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `524288` -> `524,288`, as vLLM prints its KV token counts.
pub fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A parameter count as model cards write it: `7.62B`, `494.0M`, `12K`.
pub fn params(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}B", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}M", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.0}K", f / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes_of(12 << 30, 80 << 30), "12.0/80.0 GiB");
        assert_eq!(bytes_of(100 << 20, 512 << 20), "100/512 MiB");
        assert_eq!(duration_s(185.0), "3m05s");
        assert_eq!(duration_s(90_000.0), "1d01h");
        assert_eq!(ms(0.4237), "0.42 ms");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
