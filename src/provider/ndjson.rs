//! Incremental newline-delimited JSON splitter (Ollama's native streaming format).

#[derive(Debug, Default)]
pub struct NdjsonParser {
    buf: Vec<u8>,
    /// A line grew past the cap; nothing more is taken.
    over_cap: bool,
}

impl NdjsonParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; each complete non-blank line is appended to `out` (without `\r\n`).
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        if self.over_cap {
            return;
        }
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.buf.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let mut line = std::mem::take(&mut self.buf);
            if line.len() > super::body::MAX_EVENT_BYTES {
                self.over_cap = true;
                return;
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        if self.buf.len() + rest.len() > super::body::MAX_EVENT_BYTES {
            self.over_cap = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(rest);
    }

    /// True once one line has grown past [`MAX_EVENT_BYTES`](super::body::MAX_EVENT_BYTES).
    pub fn over_cap(&self) -> bool {
        self.over_cap
    }

    /// Bytes after the last newline, if any: a line cut off when the stream ended.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace))
            .then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}
