//! HTTP/1.1 response body framing, undone incrementally: `Transfer-Encoding: chunked` (size
//! lines with extensions, trailers), `Content-Length`, or the body running to the connection's
//! close. Pure: raw bytes in, body bytes out, whatever the read boundaries.

/// Longest size or trailer line taken (real ones are a few bytes).
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Chunked {
    /// Reading a chunk's size line.
    Size,
    /// Bytes of the current chunk still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Chunked(Chunked),
    Length(u64),
    Close,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Framing {
    kind: Kind,
    line: Vec<u8>,
    done: bool,
}

impl Framing {
    pub fn chunked() -> Self {
        Self::of(Kind::Chunked(Chunked::Size))
    }

    pub fn length(n: u64) -> Self {
        let mut f = Self::of(Kind::Length(n));
        f.done = n == 0;
        f
    }

    /// The body ends when the server closes the connection.
    pub fn until_close() -> Self {
        Self::of(Kind::Close)
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind,
            line: Vec::new(),
            done: false,
        }
    }

    /// The whole body has been read (never for a body that runs to the close).
    pub fn done(&self) -> bool {
        self.done
    }

    /// The connection's end is the body's end only when nothing else frames it.
    pub fn ends_at_close(&self) -> bool {
        self.kind == Kind::Close
    }

    /// Takes raw bytes, appends the body's bytes to `out`; returns how many of `input` were
    /// used (less than all only once the body is complete).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut i = 0;
        while i < input.len() && !self.done {
            let rest = &input[i..];
            match &mut self.kind {
                Kind::Close => {
                    out.extend_from_slice(rest);
                    i = input.len();
                }
                Kind::Length(n) => {
                    let take = rest.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..take]);
                    *n -= take as u64;
                    i += take;
                    self.done = *n == 0;
                }
                Kind::Chunked(Chunked::Data(n)) => {
                    let take = rest.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..take]);
                    *n -= take as u64;
                    i += take;
                    if *n == 0 {
                        self.kind = Kind::Chunked(Chunked::DataEnd);
                    }
                }
                Kind::Chunked(_) => {
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        self.take_line(rest)?;
                        i = input.len();
                        continue;
                    };
                    self.take_line(&rest[..nl])?;
                    i += nl + 1;
                    let line = std::mem::take(&mut self.line);
                    let text = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.on_line(text)?;
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Ok(i)
    }

    fn take_line(&mut self, part: &[u8]) -> Result<(), String> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(format!(
                "malformed chunked body: a line over {MAX_LINE} bytes"
            ));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn on_line(&mut self, text: &[u8]) -> Result<(), String> {
        let Kind::Chunked(state) = &mut self.kind else {
            return Ok(());
        };
        match state {
            Chunked::Size => {
                let size = text.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size).unwrap_or("").trim();
                let n = (!size.is_empty() && size.len() <= 16)
                    .then(|| u64::from_str_radix(size, 16).ok())
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "malformed chunked body: `{}` is not a chunk size",
                            String::from_utf8_lossy(&text[..text.len().min(40)])
                        )
                    })?;
                *state = if n == 0 {
                    Chunked::Trailer
                } else {
                    Chunked::Data(n)
                };
            }
            Chunked::DataEnd => {
                if !text.is_empty() {
                    return Err("malformed chunked body: a chunk is longer than its size".into());
                }
                *state = Chunked::Size;
            }
            Chunked::Trailer => self.done = text.is_empty(),
            Chunked::Data(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `raw` in pieces of every size from 1 up; each must give the same body.
    fn each_split(
        mut f: impl FnMut() -> Framing,
        raw: &[u8],
    ) -> Vec<Result<(Vec<u8>, usize), String>> {
        (1..=raw.len())
            .map(|step| {
                let mut fr = f();
                let mut out = Vec::new();
                let mut used = 0;
                for piece in raw.chunks(step) {
                    if fr.done() {
                        break;
                    }
                    used += fr.decode(piece, &mut out)?;
                }
                Ok((out, used))
            })
            .collect()
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let raw = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for r in each_split(Framing::chunked, raw) {
            let (body, used) = r.unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz");
            assert_eq!(&raw[used..], b"NEXT", "stops at the body's end");
        }
    }

    #[test]
    fn lengths_and_close_delimited_bodies() {
        for r in each_split(|| Framing::length(5), b"helloNEXT") {
            let (body, used) = r.unwrap();
            assert_eq!((body.as_slice(), used), (&b"hello"[..], 5));
        }
        assert!(Framing::length(0).done());
        let mut f = Framing::until_close();
        let mut out = Vec::new();
        f.decode(b"abc", &mut out).unwrap();
        assert!(!f.done() && f.ends_at_close());
        assert_eq!(out, b"abc");
    }

    #[test]
    fn broken_framing_is_an_error_that_says_what() {
        let mut out = Vec::new();
        let e = Framing::chunked().decode(b"zz\r\n", &mut out).unwrap_err();
        assert!(e.contains("`zz` is not a chunk size"), "{e}");
        let e = Framing::chunked()
            .decode(b"2\r\nabc\r\n", &mut out)
            .unwrap_err();
        assert!(e.contains("longer than its size"), "{e}");
        let e = Framing::chunked()
            .decode(&vec![b'1'; 5000], &mut out)
            .unwrap_err();
        assert!(e.contains("line over"), "{e}");
        let e = Framing::chunked()
            .decode(b"11111111111111111\r\n", &mut out)
            .unwrap_err();
        assert!(e.contains("not a chunk size"), "a size past 64 bits: {e}");
    }
}
