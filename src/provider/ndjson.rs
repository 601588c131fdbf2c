//! Incremental newline-delimited JSON splitter (Ollama's native streaming format).

#[derive(Debug, Default)]
pub struct NdjsonParser {
    buf: Vec<u8>,
}

impl NdjsonParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; each complete non-blank line is appended to `out` (without `\r\n`).
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.buf.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let mut line = std::mem::take(&mut self.buf);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        self.buf.extend_from_slice(rest);
    }

    /// Bytes after the last newline, if any: a line cut off when the stream ended.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace))
            .then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}
