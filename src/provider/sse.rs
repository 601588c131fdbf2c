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

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// The previous read ended on `\r`; a `\n` starting the next read belongs to it.
    after_cr: bool,
    /// An event grew past the cap; nothing more is taken.
    over_cap: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; completed events are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        if self.over_cap {
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let was_cr = bytes[pos] == b'\r';
            if self.line.is_empty() {
                // The whole line is in this read: no copy.
                self.on_line(&bytes[..pos], out);
            } else {
                self.line.extend_from_slice(&bytes[..pos]);
                let line = std::mem::take(&mut self.line);
                self.on_line(&line, out);
                // Keep the buffer's capacity for the next split line.
                self.line = line;
                self.line.clear();
            }
            bytes = &bytes[pos + 1..];
            if was_cr {
                if bytes.is_empty() {
                    self.after_cr = true;
                } else if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
            }
            if self.check_cap() {
                return;
            }
        }
        self.line.extend_from_slice(bytes);
        self.check_cap();
    }

    /// True once one event (its unfinished line and data) has grown past
    /// [`MAX_EVENT_BYTES`](super::body::MAX_EVENT_BYTES); the parser then holds nothing.
    pub fn over_cap(&self) -> bool {
        self.over_cap
    }

    fn check_cap(&mut self) -> bool {
        if self.line.len() + self.data.len() > super::body::MAX_EVENT_BYTES {
            self.over_cap = true;
            self.line = Vec::new();
            self.data = String::new();
        }
        self.over_cap
    }

    /// True when bytes of an unfinished event are held (the stream ended mid-event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

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
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
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
