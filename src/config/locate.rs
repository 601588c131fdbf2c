//! Where each key and value stands in a YAML text, so semantic errors can say `FILE:LINE:COL`.
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub type Path = Vec<Seg>;

/// A problem found after parsing: (where, point at the key rather than the value, message).
pub type Problem = (Path, bool, String);

pub fn path_string(p: &[Seg]) -> String {
    let mut s = String::new();
    for seg in p {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// 0-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Default)]
pub struct Index {
    /// Position of a node's value.
    values: HashMap<Path, Pos>,
    /// Position of the key that introduces a mapping entry.
    keys: HashMap<Path, Pos>,
    /// Keys given twice in one mapping: (path, second position, first position).
    pub duplicates: Vec<(Path, Pos, Pos)>,
}

impl Index {
    pub fn build(text: &str) -> Self {
        let mut b = Builder::default();
        let mut p = Parser::new_from_str(text);
        // A syntax error here was already reported by the deserializer; keep what we have.
        let _ = p.load(&mut b, false);
        b.index
    }

    pub fn value(&self, p: &[Seg]) -> Option<Pos> {
        self.values.get(p).copied()
    }

    pub fn key(&self, p: &[Seg]) -> Option<Pos> {
        self.keys.get(p).copied()
    }

    /// The value's position, else the key's, else the nearest ancestor's.
    pub fn nearest(&self, p: &[Seg]) -> Pos {
        let mut p = p.to_vec();
        loop {
            if let Some(pos) = self.value(&p).or_else(|| self.key(&p)) {
                return pos;
            }
            if p.pop().is_none() {
                return Pos { line: 0, col: 0 };
            }
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Builder {
    index: Index,
    frames: Vec<Frame>,
    path: Path,
}

impl Builder {
    /// Called at the start of every node: decides whether it is a key or a value.
    /// Returns Some(path) when it is a value (the path it lives at).
    fn node(&mut self, scalar_key: Option<&str>, mark: Marker) -> Option<Path> {
        let pos = Pos {
            line: mark.line().saturating_sub(1),
            col: mark.col(),
        };
        match self.frames.last_mut() {
            None => Some(self.path.clone()),
            Some(Frame::Map { key }) if key.is_none() => {
                let k = scalar_key.unwrap_or("?").to_string();
                let mut p = self.path.clone();
                p.push(Seg::Key(k.clone()));
                if let Some(first) = self.index.keys.get(&p).copied() {
                    self.index.duplicates.push((p.clone(), pos, first));
                }
                self.index.keys.insert(p, pos);
                *key = Some(k);
                None
            }
            Some(Frame::Map { key }) => {
                let mut p = self.path.clone();
                p.push(Seg::Key(key.clone().unwrap_or_default()));
                Some(p)
            }
            Some(Frame::Seq { next }) => {
                let mut p = self.path.clone();
                p.push(Seg::Index(*next));
                Some(p)
            }
        }
    }

    /// Called when a value node is complete.
    fn value_done(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { next }) => *next += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line().saturating_sub(1),
            col: mark.col(),
        };
        match ev {
            Event::Scalar(ref s, ..) => {
                if let Some(p) = self.node(Some(s), mark) {
                    self.index.values.insert(p, pos);
                    self.value_done();
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.node(None, mark) {
                    self.index.values.insert(p, pos);
                    self.value_done();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                match self.node(None, mark) {
                    Some(p) => {
                        self.index.values.insert(p.clone(), pos);
                        self.path = p;
                    }
                    // A complex key: track it as an anonymous key path.
                    None => self.path.push(Seg::Key("?".into())),
                }
                self.frames.push(if is_map {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.path.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}
