//! Folders named in the config (`models.paths`): each model directory (one holding a
//! `config.json`) at the folder itself or one or two levels below it.
use super::{Found, Source};
use std::path::Path;

/// Bytes of the regular files under a folder (symlinks followed, each target once).
pub fn dir_size(dir: &Path) -> u64 {
    tree_size(dir, &mut |_| {})
}

/// Bytes of the files under `dir`, each target once (two links to one blob count once);
/// `dangling` hears of each link whose target is missing.
pub fn tree_size(dir: &Path, dangling: &mut dyn FnMut(&Path)) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) => {
                    if seen.insert(std::fs::canonicalize(&p).unwrap_or(p)) {
                        total += m.len();
                    }
                }
                Err(_) => dangling(&p),
            }
        }
    }
    total
}

pub fn scan(folder: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    visit(folder, 0, &mut out);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn visit(dir: &Path, depth: u32, out: &mut Vec<Found>) {
    if dir.join("config.json").is_file() {
        let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        out.push(Found {
            id: path.display().to_string(),
            source: Source::Folder,
            size_bytes: dir_size(&path),
            path,
            revision: None,
            incomplete: false,
            problems: Vec::new(),
        });
        return;
    }
    if depth >= 2 {
        return;
    }
    let mut subs: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    subs.sort();
    for s in subs {
        visit(&s, depth + 1, out);
    }
}
