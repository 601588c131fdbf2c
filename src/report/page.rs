//! What a report is made of, before it is HTML: headings, charts, tables, lines of text.
use super::chart::Chart;

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading (`level` 2 or 3).
    Heading(u8, String),
    Chart(Chart),
    Table(Table),
    Text(String),
    /// A verdict line: green when it passed, red when not.
    Verdict {
        pass: bool,
        line: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub id: String,
    pub caption: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(id: &str, caption: &str, head: &[&str]) -> Self {
        Table {
            id: id.to_string(),
            caption: caption.to_string(),
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// Blocks with their charts: charts without data are left out, a line says so.
#[derive(Debug, Default)]
pub struct Page {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Page {
    pub fn heading(&mut self, level: u8, s: impl Into<String>) {
        self.blocks.push(Block::Heading(level, s.into()));
    }

    pub fn text(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Text(s.into()));
    }

    pub fn chart(&mut self, c: Chart) {
        if c.has_data() {
            self.blocks.push(Block::Chart(c));
        }
    }

    pub fn table(&mut self, t: Table) {
        if !t.rows.is_empty() {
            self.blocks.push(Block::Table(t));
        }
    }

    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Chart(c) => Some(c),
            _ => None,
        })
    }
}

/// A figure for a table cell: three significant places, `-` for none.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Text made safe for HTML, attributes included.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
