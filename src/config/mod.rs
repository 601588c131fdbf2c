//! `dashboard.yaml`: finding it, `${VAR}` interpolation, parsing, and validation with
//! `FILE:LINE:COL: message` errors that name the key. serde_yaml stays behind this module.
pub mod include;
pub mod interp;
pub mod keymap;
pub mod keys;
pub mod locate;
pub mod save;
pub mod schema;
mod servers;
mod validate;

pub use schema::*;
pub use validate::gateway_listen;

use locate::{Path as KeyPath, Seg};
use std::fmt;
use std::path::{Path, PathBuf};

/// The shipped configuration, used when no file is found.
pub const DEFAULT_YAML: &str = include_str!("../../dashboard.yaml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::BuiltIn => f.write_str("<built-in default>"),
        }
    }
}

/// `--config`, else `./dashboard.yaml`, else `$XDG_CONFIG_HOME/anorag-tui/dashboard.yaml`
/// (`~/.config` when unset), else the built-in default.
pub fn find(explicit: Option<&Path>) -> Source {
    if let Some(p) = explicit {
        return Source::File(p.to_path_buf());
    }
    let local = PathBuf::from("dashboard.yaml");
    if local.is_file() {
        return Source::File(local);
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        let p = dir.join("anorag-tui").join("dashboard.yaml");
        if p.is_file() {
            return Source::File(p);
        }
    }
    Source::BuiltIn
}

pub fn load(source: &Source) -> Result<Config, ConfigErrors> {
    match source {
        Source::BuiltIn => load_str(DEFAULT_YAML, "<built-in default>").map(|mut c| {
            c.base_dir = std::env::current_dir().unwrap_or_default();
            c.file = "<built-in default>".into();
            c
        }),
        Source::File(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    file: name.clone(),
                    line: 1,
                    col: 1,
                    message: format!("cannot read the configuration: {e}"),
                }])
            })?;
            load_str(&text, &name).map(|mut c| {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                c.base_dir = match dir {
                    Some(d) => d.to_path_buf(),
                    None => std::env::current_dir().unwrap_or_default(),
                };
                c.file = std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string();
                c
            })
        }
    }
}

/// Finds the configuration (`--config`, ./dashboard.yaml, the user's, the built-in) and loads
/// it; the error text is ready to print. The CLI and the console both start here.
pub fn find_and_load(explicit: Option<&Path>) -> Result<(Config, Source), String> {
    let source = find(explicit);
    let cfg = load(&source).map_err(|e| e.to_string())?;
    Ok((cfg, source))
}

pub fn load_str(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, file, &|k| std::env::var(k).ok())
}

pub fn load_str_with_env(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let main = parse_doc::<Config>(text, file, env, "it needs an `llm:` section")?;
    let mut cfg = main.value;
    cfg.from_env = main.interp.from_env.clone();
    let base = Path::new(file)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let mut docs = vec![Located {
        file: file.to_string(),
        index: main.index,
        interp: main.interp,
        profiles: Vec::new(),
    }];
    if file != "<built-in default>" {
        include::merge(&mut cfg, &base, env, &mut docs)?;
    }
    let problems = validate::validate(&cfg);
    if problems.is_empty() {
        return Ok(cfg);
    }
    Err(ConfigErrors(
        problems
            .into_iter()
            .map(|(path, on_key, msg)| {
                // A profile from an included file is reported in that file.
                let doc = match path.get(..2) {
                    Some([Seg::Key(s), Seg::Key(name)]) if s == "servers" => docs
                        .iter()
                        .find(|d| d.profiles.contains(name))
                        .unwrap_or(&docs[0]),
                    _ => &docs[0],
                };
                doc.error(&path, on_key, msg)
            })
            .collect(),
    ))
}

/// A document that was parsed, kept to place later errors in it.
struct Located {
    file: String,
    index: locate::Index,
    interp: interp::Interpolated,
    /// The profiles it brought (for included files).
    profiles: Vec<String>,
}

impl Located {
    fn error(&self, path: &KeyPath, on_key: bool, msg: String) -> ConfigError {
        let pos = if on_key {
            self.index
                .key(path)
                .unwrap_or_else(|| self.index.nearest(path))
        } else {
            self.index.nearest(path)
        };
        ConfigError {
            file: self.file.clone(),
            line: pos.line + 1,
            col: self.interp.original_col(pos.line, pos.col) + 1,
            message: format!("{}: {msg}", locate::path_string(path)),
        }
    }
}

struct Parsed<T> {
    value: T,
    index: locate::Index,
    interp: interp::Interpolated,
}

/// Interpolates, indexes and deserializes one YAML document, with every error placed at
/// `FILE:LINE:COL`. `needs` says what an empty file lacks.
fn parse_doc<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
    needs: &str,
) -> Result<Parsed<T>, ConfigErrors> {
    let at = |line: usize, col: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        col,
        message,
    };
    if text.trim().is_empty() {
        return Err(ConfigErrors(vec![at(
            1,
            1,
            format!("the file is empty; {needs}"),
        )]));
    }
    let interp = interp::interpolate(text, env).map_err(|errs| {
        ConfigErrors(
            errs.into_iter()
                .map(|e| at(e.line, e.col, e.message))
                .collect(),
        )
    })?;
    let index = locate::Index::build(&interp.text);
    // YAML forbids a key twice in one mapping; serde would quietly keep one of them.
    if let Some((path, pos, first)) = index.duplicates.first() {
        return Err(ConfigErrors(vec![at(
            pos.line + 1,
            interp.original_col(pos.line, pos.col) + 1,
            format!(
                "{}: duplicate key (first given at line {})",
                locate::path_string(path),
                first.line + 1
            ),
        )]));
    }
    let de = serde_yaml::Deserializer::from_str(&interp.text);
    match serde_path_to_error::deserialize(de) {
        Ok(value) => Ok(Parsed {
            value,
            index,
            interp,
        }),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (mut line, mut col) = inner
                .location()
                .map(|l| {
                    let line0 = l.line().saturating_sub(1);
                    (
                        line0 + 1,
                        interp.original_col(line0, l.column().saturating_sub(1)) + 1,
                    )
                })
                .unwrap_or((1, 1));
            let mut msg = clean_serde_message(&inner.to_string());
            if msg.starts_with("missing field `llm`") && index.value(&[]).is_none() {
                msg = format!("the file has no settings; {needs}");
                (line, col) = (1, 1);
            }
            let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            if source_line.starts_with(|c: char| c.is_whitespace()) && source_line.contains('\t') {
                msg.push_str(" (this line is indented with a tab; YAML indents with spaces only)");
            }
            // A path ending in `?` is where the parser gave up, not a key of ours.
            let message = if path.is_empty() || path == "." || path.ends_with('?') {
                msg
            } else {
                format!("{path}: {msg}")
            };
            Err(ConfigErrors(vec![at(line, col, message)]))
        }
    }
}

/// serde_yaml puts " at line L column C" into its text (at the end, or mid-sentence for
/// syntax errors) and may prefix its own path. The first position is the error's own, which we
/// print in front; later ones (where a flow mapping opened) become `at L:C`.
fn clean_serde_message(s: &str) -> String {
    const AT: &str = " at line ";
    let mut out = String::new();
    let mut rest = s;
    let mut first = true;
    while let Some(i) = rest.find(AT) {
        out.push_str(&rest[..i]);
        let tail = &rest[i + AT.len()..];
        let line: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let Some(after_col) = tail[line.len()..].strip_prefix(" column ") else {
            out.push_str(AT);
            rest = tail;
            continue;
        };
        let col: String = after_col.chars().take_while(char::is_ascii_digit).collect();
        if !first {
            out.push_str(&format!(" at {line}:{col}"));
        }
        first = false;
        rest = &after_col[col.len()..];
    }
    out.push_str(rest);
    let s = out.as_str();
    let s = s.strip_prefix("llm: ").unwrap_or(s);
    match s.split_once(": ") {
        Some((p, rest)) if p.starts_with("llm.") && !p.contains(' ') => rest.to_string(),
        _ => s.to_string(),
    }
}

/// One route, whatever block it came from, as the factory and the console see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URLs (several for `multi_ollama`).
    pub urls: Vec<String>,
    pub model: String,
    pub fallback: Vec<String>,
    pub context_fallback: Vec<String>,
    pub params: Params,
    pub api_key_env: Option<String>,
    pub builtin: Option<BuiltinBlock>,
    /// Where the route is defined, for error messages.
    pub path: KeyPath,
}

fn key(parts: &[&str]) -> KeyPath {
    parts.iter().map(|p| Seg::Key(p.to_string())).collect()
}

impl Config {
    /// Every route, in file order: vLLM routes first, then the single-route blocks.
    pub fn routes(&self) -> Vec<RouteSpec> {
        let l = &self.llm;
        let mut out = Vec::new();
        if let Some(v) = &l.vllm_openai {
            for (name, r) in &v.routes {
                out.push(RouteSpec {
                    name: name.clone(),
                    kind: ProviderKind::VllmOpenai,
                    urls: vec![r.base_url.clone()],
                    model: r.model.clone(),
                    fallback: r.fallback.clone(),
                    context_fallback: r.context_fallback.clone(),
                    params: r.params.unwrap_or_default().or(v.params),
                    api_key_env: r.api_key_env.clone().or_else(|| v.api_key_env.clone()),
                    builtin: None,
                    path: key(&["llm", "vllm_openai", "routes", name]),
                });
            }
        }
        if let Some(o) = &l.ollama {
            out.push(RouteSpec {
                name: "ollama".into(),
                kind: ProviderKind::Ollama,
                urls: vec![o.base_url.clone()],
                model: o.model.clone(),
                fallback: o.fallback.clone(),
                context_fallback: vec![],
                params: o.params,
                api_key_env: None,
                builtin: None,
                path: key(&["llm", "ollama"]),
            });
        }
        if let Some(m) = &l.multi_ollama {
            out.push(RouteSpec {
                name: "multi_ollama".into(),
                kind: ProviderKind::Ollama,
                urls: m.instances.clone(),
                model: m.model.clone(),
                fallback: m.fallback.clone(),
                context_fallback: vec![],
                params: m.params,
                api_key_env: None,
                builtin: None,
                path: key(&["llm", "multi_ollama"]),
            });
        }
        if let Some(o) = &l.openai {
            out.push(RouteSpec {
                name: "openai".into(),
                kind: ProviderKind::Openai,
                urls: vec![o.base_url.clone()],
                model: o.model.clone(),
                fallback: o.fallback.clone(),
                context_fallback: vec![],
                params: o.params,
                api_key_env: Some(o.api_key_env.clone()),
                builtin: None,
                path: key(&["llm", "openai"]),
            });
        }
        if let Some(b) = &l.builtin {
            out.push(RouteSpec {
                name: "builtin".into(),
                kind: ProviderKind::Builtin,
                urls: vec![],
                model: b.model.clone(),
                fallback: vec![],
                context_fallback: vec![],
                params: b.params,
                api_key_env: None,
                builtin: Some(b.clone()),
                path: key(&["llm", "builtin"]),
            });
        }
        out
    }

    /// The route used when none is named.
    pub fn default_route(&self) -> Option<String> {
        match self.llm.provider {
            ProviderName::VllmOpenai => self.llm.vllm_openai.as_ref().and_then(|v| {
                v.default_route
                    .clone()
                    .or_else(|| v.routes.keys().next().cloned())
            }),
            other => Some(other.key().to_string()),
        }
    }
}

/// A launch profile `p` from its YAML body, for tests of the modules that use profiles.
#[cfg(test)]
pub(crate) fn test_profile(yaml: &str) -> ServerProfile {
    let text = format!(
        "llm:\n  provider: builtin\n  builtin: {{}}\nservers:\n  p:\n{}",
        yaml.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let cfg = load_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
    cfg.servers["p"].clone()
}
