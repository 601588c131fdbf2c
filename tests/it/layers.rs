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

/// A cycle of the graph, as its path (first node again at the end), by depth-first search.
fn find_cycle<T: Ord + Clone>(g: &BTreeMap<T, BTreeSet<T>>) -> Option<Vec<T>> {
    fn visit<T: Ord + Clone>(
        n: &T,
        g: &BTreeMap<T, BTreeSet<T>>,
        stack: &mut Vec<T>,
        done: &mut BTreeSet<T>,
    ) -> Option<Vec<T>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.clone());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.clone());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.clone());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(g.contains_key("config") && g.contains_key("tui"), "{g:?}");
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle: {}", c.join(" -> "));
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

/// Every file of `src/` as a module path (`bench/plan.rs` is `bench::plan`, a `mod.rs` its
/// folder's module), with its text less its comments.
fn file_modules() -> BTreeMap<Vec<String>, (bool, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut fs = Vec::new();
    files(&src, &mut fs);
    let mut out = BTreeMap::new();
    for f in fs {
        let rel = f.strip_prefix(&src).unwrap().with_extension("");
        let mut m: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let folder = matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main"));
        if folder {
            m.pop();
        }
        let text: String = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(m, (folder, text));
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// File -> the files it names through `crate::`, `super::` and `self::` paths. A name a
/// folder's `mod.rs` re-exports (`pub use plan::Plan`) leads to the file that defines it; a
/// folder's own file naming its children is structure, not use.
fn file_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = file_modules();
    let mut reexports: BTreeMap<(Vec<String>, String), Vec<String>> = BTreeMap::new();
    for (m, (_, text)) in &mods {
        for (i, _) in text.match_indices("pub use ") {
            let rest = text[i + 8..].trim_start_matches("self::");
            let child = ident(rest);
            let mut cm = m.clone();
            cm.push(child.clone());
            if child.is_empty() || !mods.contains_key(&cm) {
                continue;
            }
            let after = &rest[child.len()..];
            let names = after.trim_start_matches("::");
            let names = match names.strip_prefix('{') {
                Some(g) => g[..g.find('}').unwrap_or(g.len())].to_string(),
                None => ident(names),
            };
            for n in names.split(',').map(|n| ident(n.trim())) {
                reexports.insert((m.clone(), n), cm.clone());
            }
        }
    }
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len()).rev().find_map(|k| {
            let m = path[..k].to_vec();
            mods.contains_key(&m).then(|| {
                path.get(k)
                    .and_then(|n| reexports.get(&(m.clone(), n.clone())))
                    .cloned()
                    .unwrap_or(m)
            })
        })
    };
    let mut g = BTreeMap::new();
    for (m, (folder, text)) in &mods {
        let mut out = BTreeSet::new();
        for kw in ["crate::", "super::", "self::"] {
            for (i, _) in text.match_indices(kw) {
                if i > 0 && text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let base: Vec<String> = match kw {
                    "crate::" => vec![],
                    "self::" if *folder => m.clone(),
                    "self::" => m.clone(),
                    _ if *folder => m[..m.len().saturating_sub(1)].to_vec(),
                    _ => m[..m.len().saturating_sub(1)].to_vec(),
                };
                // `super::super::x` climbs once more.
                let mut rest = &text[i + kw.len()..];
                let mut base = base;
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                let mut path = base.clone();
                loop {
                    let id = ident(rest);
                    if id.is_empty() {
                        break;
                    }
                    path.push(id.clone());
                    rest = &rest[id.len()..];
                    match rest.strip_prefix("::") {
                        Some(r) if !r.starts_with('{') => rest = r,
                        _ => break,
                    }
                }
                let mut targets = vec![path.clone()];
                if let Some(group) = rest.strip_prefix("::{") {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    targets = group
                        .split(',')
                        .map(|x| ident(x.trim()))
                        .filter(|x| !x.is_empty())
                        .map(|x| {
                            let mut p = path.clone();
                            p.push(x);
                            p
                        })
                        .collect();
                }
                for t in targets {
                    if let Some(f) = resolve(&t) {
                        let own_child = *folder && f.starts_with(m);
                        if f != *m && !own_child {
                            out.insert(f);
                        }
                    }
                }
            }
        }
        g.insert(m.clone(), out);
    }
    g
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let g = file_graph();
    assert!(g.len() > 50, "{}", g.len());
    assert!(
        g[&vec![
            "tui".to_string(),
            "update".to_string(),
            "traffic".to_string()
        ]]
            .contains(&vec!["tui".to_string(), "app".to_string()]),
        "the graph sees `use super::super::app::*`"
    );
    if let Some(c) = find_cycle(&g) {
        let names: Vec<String> = c.iter().map(|m| m.join("/")).collect();
        panic!("files in a circle: {}", names.join(" -> "));
    }
}
