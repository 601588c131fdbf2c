//! Styles and small drawing helpers shared by the panes.
use crate::supervisor::State;
use crate::telemetry::history::Ring;
use crate::telemetry::routes::Health;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

pub fn state_style(s: State) -> Style {
    let c = match s {
        State::Ready => Color::Green,
        State::Starting | State::Stopping => Color::Yellow,
        State::Unhealthy => Color::Magenta,
        State::Crashed => Color::Red,
        State::Exited | State::Stopped => Color::DarkGray,
    };
    Style::new().fg(c)
}

pub fn health_style(h: Health) -> Style {
    Style::new().fg(match h {
        Health::Up => Color::Green,
        Health::Degraded => Color::Magenta,
        Health::Down => Color::Red,
        Health::Unknown => Color::DarkGray,
    })
}

pub fn title_style() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn selected() -> Style {
    Style::new()
        .bg(Color::Blue)
        .fg(Color::White)
        .add_modifier(Modifier::BOLD)
}

pub fn key_style() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub fn error_style() -> Style {
    Style::new().fg(Color::Red)
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values of a history as a one-line sparkline (gaps as spaces).
pub fn spark(r: &Ring, width: usize, max: Option<f64>) -> String {
    let max = max.or_else(|| r.max()).unwrap_or(0.0);
    let skip = r.len().saturating_sub(width);
    r.iter()
        .skip(skip)
        .map(|v| match v {
            Some(x) if max > 0.0 => BARS[((x / max).clamp(0.0, 1.0) * 7.0).round() as usize],
            Some(_) => BARS[0],
            None => ' ',
        })
        .collect()
}

/// Values as a one-line sparkline, the last `width` of them, scaled to their maximum.
pub fn spark_values(values: &[f64], width: usize) -> String {
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let skip = values.len().saturating_sub(width);
    values[skip..]
        .iter()
        .map(|x| {
            if max > 0.0 {
                BARS[((x / max).clamp(0.0, 1.0) * 7.0).round() as usize]
            } else {
                BARS[0]
            }
        })
        .collect()
}

/// Word-wraps text to `width` columns (hard-cutting words longer than a line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for raw in text.split('\n') {
        let mut line = String::new();
        let mut len = 0usize;
        for word in raw.split(' ') {
            let wl = word.chars().count();
            if len > 0 && len + 1 + wl > width {
                out.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            if wl > width {
                for c in word.chars() {
                    if len == width {
                        out.push(std::mem::take(&mut line));
                        len = 0;
                    }
                    line.push(c);
                    len += 1;
                }
            } else {
                line.push_str(word);
                len += wl;
            }
        }
        out.push(line);
    }
    out
}

/// A line with every (case-insensitive) occurrence of `needle` highlighted.
pub fn highlight<'a>(text: &'a str, needle: &str) -> Line<'a> {
    if needle.is_empty() {
        return Line::raw(text);
    }
    let n = needle.to_lowercase();
    // Lowercasing can change a character's byte length ("İ" grows, the Kelvin sign shrinks),
    // so matches are found in the lowercase text and mapped back, byte by byte, to whole
    // characters of the original.
    let mut lower = String::with_capacity(text.len());
    let mut span_of: Vec<(usize, usize)> = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let before = lower.len();
        lower.extend(c.to_lowercase());
        span_of.extend(std::iter::repeat_n(
            (i, i + c.len_utf8()),
            lower.len() - before,
        ));
    }
    let mut spans = Vec::new();
    let (mut at, mut from) = (0, 0);
    while let Some(i) = lower[from..].find(&n) {
        let (s, e) = (from + i, from + i + n.len());
        from = e;
        let (start, end) = (span_of[s].0, span_of[e - 1].1);
        if start < at {
            continue;
        }
        if start > at {
            spans.push(Span::raw(&text[at..start]));
        }
        spans.push(Span::styled(
            &text[start..end],
            Style::new().bg(Color::Yellow).fg(Color::Black),
        ));
        at = end;
    }
    spans.push(Span::raw(&text[at..]));
    Line::from(spans)
}

/// Local wall-clock time `HH:MM`.
pub fn clock(unix: f64) -> String {
    clock_with(unix, false)
}

/// Local wall-clock time `HH:MM:SS`.
pub fn clock_s(unix: f64) -> String {
    clock_with(unix, true)
}

fn clock_with(unix: f64, seconds: bool) -> String {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r fills the struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    match (ok, seconds) {
        (true, false) => format!("{:02}:{:02}", tm.tm_hour, tm.tm_min),
        (true, true) => format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec),
        (false, _) => String::from("--:--"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_cuts_long_ones() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 10), ["a", "", "b"]);
    }

    #[test]
    fn sparklines_scale_to_the_max_and_show_gaps() {
        let mut r = Ring::new(8);
        for v in [Some(0.0), Some(50.0), None, Some(100.0)] {
            r.push(v);
        }
        assert_eq!(spark(&r, 10, Some(100.0)), "▁▅ █");
        assert_eq!(spark(&r, 2, Some(100.0)), " █");
    }

    fn marked(l: &Line) -> Vec<String> {
        l.spans
            .iter()
            .filter(|s| s.style.bg == Some(Color::Yellow))
            .map(|s| s.content.to_string())
            .collect()
    }

    #[test]
    fn highlight_survives_case_folds_that_change_byte_lengths() {
        // "İ" lowercases to 3 bytes from 2, the Kelvin sign to 1 from 3: the total length
        // stays 8, and every offset after them moves.
        let l = highlight("İİx\u{212A}", "x");
        assert_eq!(marked(&l), ["x"]);
        let l = highlight("ÄRGER \u{212A}elvin İstanbul error", "kelvin");
        assert_eq!(marked(&l), ["\u{212A}elvin"]);
        let l = highlight("İstanbul", "i");
        assert_eq!(marked(&l), ["İ"]);
        let l = highlight("Error error ERROR", "error");
        assert_eq!(marked(&l), ["Error", "error", "ERROR"]);
        let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "Error error ERROR");
    }
}
