//! Incremental Server-Sent Events parser: bytes in, events out, whatever the read boundaries.
//!
//! Follows the WHATWG event-stream rules that matter for LLM servers: `\n`, `\r\n` and `\r`
//! line ends (also split across reads), `data:` with or without the space, several `data`
//! lines joined by `\n`, comment lines (`:` keep-alives) skipped, `event:` kept.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits bytes into lines at `\n`, `\r\n` or `\r`, whatever the read boundaries; a line that
/// is whole in one read is handed out without a copy.
#[derive(Debug, Default)]
pub struct Lines {
    line: Vec<u8>,
    /// The previous read ended on `\r`; a `\n` starting the next read belongs to it.
    after_cr: bool,
}

impl Lines {
    /// Hands each complete line to `on_line` until it returns true (stop: the rest of `bytes`
    /// is dropped); keeps an unfinished line for the next read. True when stopped.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_line: impl FnMut(&[u8]) -> bool) -> bool {
        if self.after_cr {
            self.after_cr = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let was_cr = bytes[pos] == b'\r';
            let stop = if self.line.is_empty() {
                on_line(&bytes[..pos])
            } else {
                self.line.extend_from_slice(&bytes[..pos]);
                let stop = on_line(&self.line);
                // Keep the buffer's capacity for the next split line.
                self.line.clear();
                stop
            };
            if stop {
                return true;
            }
            bytes = &bytes[pos + 1..];
            if was_cr {
                if bytes.is_empty() {
                    self.after_cr = true;
                } else if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
            }
        }
        self.line.extend_from_slice(bytes);
        false
    }

    /// Nothing unfinished: the next bytes start a line.
    pub fn is_clean(&self) -> bool {
        self.line.is_empty() && !self.after_cr
    }

    /// Bytes of an unfinished line.
    pub fn pending(&self) -> usize {
        self.line.len()
    }

    /// Forgets the unfinished line and its memory.
    pub fn drop_pending(&mut self) {
        self.line = Vec::new();
    }
}

/// The fields of the event being read.
#[derive(Debug, Default)]
struct Fields {
    data: String,
    has_data: bool,
    event: Option<String>,
}

#[derive(Debug, Default)]
pub struct SseParser {
    lines: Lines,
    fields: Fields,
    /// An event grew past the cap; nothing more is taken.
    over_cap: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; completed events are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        if self.over_cap {
            return;
        }
        let fields = &mut self.fields;
        let cap = super::body::MAX_EVENT_BYTES;
        let stopped = self.lines.feed(bytes, |line| {
            fields.on_line(line, out);
            fields.data.len() > cap
        });
        if stopped || self.lines.pending() + self.fields.data.len() > cap {
            self.over_cap = true;
            self.lines.drop_pending();
            self.fields.data = String::new();
        }
    }

    /// True once one event (its unfinished line and data) has grown past
    /// [`MAX_EVENT_BYTES`](super::body::MAX_EVENT_BYTES); the parser then holds nothing.
    pub fn over_cap(&self) -> bool {
        self.over_cap
    }

    /// True when bytes of an unfinished event are held (the stream ended mid-event).
    pub fn has_partial(&self) -> bool {
        self.lines.pending() > 0 || self.fields.has_data
    }
}

impl Fields {
    fn on_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
                self.has_data = false;
            } else {
                self.event = None;
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = split_field(line);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                // Valid UTF-8 (every real server's) is copied as is; anything else is repaired.
                match std::str::from_utf8(value) {
                    Ok(v) => self.data.push_str(v),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

/// A field line's name and value (one space after the colon dropped).
pub fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(i) => {
            let v = &line[i + 1..];
            (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &b""[..]),
    }
}

/// The error for an OpenAI-style stream whose body ended before `data: [DONE]`: in the middle
/// of an event, after some, or before any.
pub fn truncated(partial: bool, seen_any: bool) -> super::ProviderError {
    let what = if partial {
        "in the middle of an event"
    } else if seen_any {
        "without `data: [DONE]`"
    } else {
        "before any event"
    };
    super::ProviderError::new(
        super::ErrorClass::StreamBroken,
        format!("the server closed the stream {what}"),
    )
}
