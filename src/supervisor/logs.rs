//! Server logs: a size-rotated file written by the monitor, followers that read it across
//! rotations, and a bounded in-memory ring that counts what it had to drop.
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `server.log` and its rotations `server.log.1` (newest) .. `server.log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Appends to a file and rotates it when it passes `max_bytes`, at a line boundary.
pub struct RotatingWriter {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: File,
    size: u64,
}

impl RotatingWriter {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1024),
            keep: keep.max(1),
            file,
            size,
        })
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while self.size + bytes.len() as u64 > self.max_bytes {
            // Fill this file up to the last line end that fits, then start the next one.
            let room = (self.max_bytes - self.size.min(self.max_bytes)) as usize;
            let cut = bytes[..room.min(bytes.len())]
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1);
            match cut {
                Some(c) => {
                    self.file.write_all(&bytes[..c])?;
                    bytes = &bytes[c..];
                }
                // No line end fits: a line longer than the file limit, or a file already full.
                None if self.size == 0 => {
                    let c = room.max(1).min(bytes.len());
                    self.file.write_all(&bytes[..c])?;
                    bytes = &bytes[c..];
                }
                None => {}
            }
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        for i in (1..self.keep).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Makes a log line safe to draw in a terminal: escape sequences and control characters go,
/// tabs become spaces.
pub fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI `ESC [ ... final` or a two-byte escape.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Splits a byte stream into lines (`\n`, `\r\n`, and `\r` as progress bars use it).
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The last byte seen was `\r`: a `\n` right after it ends nothing new.
    after_cr: bool,
}

/// A line longer than this is cut, so one runaway line cannot grow memory without bound.
pub const MAX_LINE: usize = 16 * 1024;

impl LineSplitter {
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    out.push(clean_line(&self.partial));
                    self.partial.clear();
                    self.after_cr = b == b'\r';
                }
                _ => {
                    self.after_cr = false;
                    if self.partial.len() == MAX_LINE {
                        out.push(clean_line(&self.partial) + " …");
                        self.partial.clear();
                    }
                    self.partial.push(b);
                }
            }
        }
    }

    /// The unfinished last line, if any.
    pub fn pending(&self) -> Option<String> {
        (!self.partial.is_empty()).then(|| clean_line(&self.partial))
    }
}

/// The last lines of a server's log, reaching into rotated files when the current one is short.
pub fn tail(path: &Path, n: usize, keep: u32) -> Vec<String> {
    let mut lines: VecDeque<String> = VecDeque::new();
    let files = std::iter::once(path.to_path_buf()).chain((1..=keep).map(|i| rotated(path, i)));
    for f in files {
        if lines.len() >= n {
            break;
        }
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        let mut split = LineSplitter::default();
        let mut v = Vec::new();
        split.push(&bytes, &mut v);
        v.extend(split.pending());
        for l in v.into_iter().rev() {
            if lines.len() >= n {
                break;
            }
            lines.push_front(l);
        }
    }
    lines.into()
}

/// Follows a log file from a position, across rotations: it reads the old file to its end
/// before switching to the new one, so no line is lost at a rotation.
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    split: LineSplitter,
    buf: Vec<u8>,
}

impl LogFollower {
    /// Starts at the end of the current file (only new lines).
    pub fn at_end(path: &Path) -> Self {
        let mut f = Self::from_start(path);
        if let Some(file) = f.file.as_mut() {
            let _ = file.seek(SeekFrom::End(0));
        }
        f
    }

    pub fn from_start(path: &Path) -> Self {
        let file = File::open(path).ok();
        let ino = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.ino());
        Self {
            path: path.to_path_buf(),
            file,
            ino,
            split: LineSplitter::default(),
            buf: vec![0; 64 * 1024],
        }
    }

    /// Reads what was written since the last call; at most `max_bytes`, so a flood is taken
    /// in slices. Returns the complete lines.
    pub fn poll(&mut self, max_bytes: usize, out: &mut Vec<String>) -> usize {
        let mut read = 0;
        loop {
            if let Some(f) = self.file.as_mut() {
                while read < max_bytes {
                    match f.read(&mut self.buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            self.split.push(&self.buf[..n], out);
                            read += n;
                        }
                    }
                }
            }
            if read >= max_bytes {
                return read;
            }
            // At the end of what we hold: has the path moved on to a new file?
            let current = std::fs::metadata(&self.path).ok().map(|m| m.ino());
            match current {
                Some(ino) if ino != self.ino || self.file.is_none() => {
                    self.file = File::open(&self.path).ok();
                    self.ino = ino;
                }
                _ => return read,
            }
        }
    }
}

/// A bounded ring of recent lines. When full, the oldest line goes and is counted.
#[derive(Debug, Clone)]
pub struct LogRing {
    cap: usize,
    lines: VecDeque<String>,
    dropped: u64,
    total: u64,
}

impl LogRing {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            lines: VecDeque::new(),
            dropped: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
        self.total += 1;
    }

    pub fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        for l in lines {
            self.push(l);
        }
    }

    /// Lines lost before reaching the ring (a full channel) still count as dropped.
    pub fn count_lost(&mut self, n: u64) {
        self.dropped += n;
        self.total += n;
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.lines.iter()
    }
    pub fn get(&self, i: usize) -> Option<&String> {
        self.lines.get(i)
    }
    pub fn clear(&mut self) {
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    #[test]
    fn lines_split_on_every_ending_and_across_reads() {
        assert_eq!(
            split(&[b"a\nb", b"c\r", b"\nd\re\n\n"]),
            ["a", "bc", "d", "e", ""]
        );
    }

    #[test]
    fn escape_sequences_and_controls_are_removed() {
        assert_eq!(
            clean_line(b"\x1b[32mINFO\x1b[0m\tready\x07"),
            "INFO    ready"
        );
    }

    #[test]
    fn a_full_ring_drops_the_oldest_and_counts_it() {
        let mut r = LogRing::new(3);
        r.extend((0..5).map(|i| i.to_string()));
        assert_eq!(r.iter().cloned().collect::<Vec<_>>(), ["2", "3", "4"]);
        assert_eq!((r.dropped(), r.total()), (2, 5));
        r.count_lost(10);
        assert_eq!((r.dropped(), r.total()), (12, 15));
    }

    #[test]
    fn rotation_keeps_whole_lines_and_the_follower_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let mut w = RotatingWriter::open(&path, 1024, 3).unwrap();
        let mut f = LogFollower::from_start(&path);
        let mut seen = Vec::new();
        for i in 0..400 {
            w.write(format!("line {i:04} {}\n", "x".repeat(i % 40)).as_bytes())
                .unwrap();
            if i % 7 == 0 {
                f.poll(usize::MAX, &mut seen);
            }
        }
        f.poll(usize::MAX, &mut seen);
        let want: Vec<String> = (0..400)
            .map(|i| format!("line {i:04} {}", "x".repeat(i % 40)))
            .collect();
        assert_eq!(seen, want);
        for n in 1..=3 {
            let text = std::fs::read_to_string(rotated(&path, n)).unwrap();
            assert!(text.ends_with('\n') && text.len() <= 1024, "rotation {n}");
            assert!(text.starts_with("line "), "rotation {n} starts on a line");
        }
        assert!(
            !rotated(&path, 4).exists(),
            "only `keep` rotations are kept"
        );
        let last = tail(&path, 5, 3);
        assert_eq!(last, want[395..]);
    }
}
