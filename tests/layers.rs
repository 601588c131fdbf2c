//! The module layers stay a tree: no module imports one that imports it back, and the CLI and
//! the console never import each other (DESIGN.md §2). Read from the source text, so a new
//! `use crate::...` that closes a circle fails here before review.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module -> the other top-level modules its files name as `crate::X`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "main" || name == "lib" {
            continue;
        }
        let mut fs = Vec::new();
        if p.is_dir() {
            files(&p, &mut fs);
        } else {
            fs.push(p.clone());
        }
        let deps = g.entry(name.clone()).or_default();
        for f in fs {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + 7..];
                let mut names = Vec::new();
                if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    names.extend(group[..end].split(',').map(|s| s.trim().to_string()));
                } else {
                    names.push(rest.to_string());
                }
                for n in names {
                    let m: String = n
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !m.is_empty() && m != name {
                        deps.insert(m);
                    }
                }
            }
        }
    }
    g
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(g.contains_key("config") && g.contains_key("tui"), "{g:?}");
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, &g, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn cli_and_console_do_not_import_each_other_and_engines_import_neither() {
    let g = graph();
    assert!(!g["cli"].contains("tui"), "cli imports tui: {:?}", g["cli"]);
    assert!(!g["tui"].contains("cli"), "tui imports cli: {:?}", g["tui"]);
    for (m, deps) in &g {
        if m != "cli" && m != "tui" {
            assert!(
                !deps.contains("cli") && !deps.contains("tui"),
                "{m} imports a front end: {deps:?}"
            );
        }
    }
}

#[test]
fn only_the_console_uses_the_terminal_libraries() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut fs = Vec::new();
    files(&src, &mut fs);
    for f in fs {
        if f.starts_with(src.join("tui")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for lib in ["ratatui", "crossterm"] {
            assert!(
                !text.contains(&format!("{lib}::")),
                "{} uses {lib}",
                f.display()
            );
        }
    }
}
