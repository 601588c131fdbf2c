//! `include:`: other files whose `servers:` join the config's. A folder includes every
//! `*.yaml` in it, in name order. Profiles kept from the console's Models pane live in such a
//! folder (`servers.d/NAME.yaml`, see `save_profile`), so the user's own file is never
//! rewritten, only given one `include:` line when it has none.
use super::locate::Seg;
use super::schema::{Config, ServerProfile};
use super::{parse_doc, ConfigErrors, Located};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Included {
    #[serde(default)]
    servers: IndexMap<String, ServerProfile>,
}

/// The files one `include:` entry names: itself, or a folder's `*.yaml`/`*.yml` sorted.
pub fn files_of(base: &Path, entry: &str) -> Result<Vec<PathBuf>, String> {
    let p = base.join(entry);
    let meta = std::fs::metadata(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    if !meta.is_dir() {
        return Ok(vec![p]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml") && f.is_file())
        .collect();
    v.sort();
    Ok(v)
}

pub(super) fn merge(
    cfg: &mut Config,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    docs: &mut Vec<Located>,
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let own: Vec<String> = cfg.servers.keys().cloned().collect();
    for (i, entry) in cfg.include.clone().iter().enumerate() {
        let here = vec![Seg::Key("include".into()), Seg::Index(i)];
        let files = match files_of(base, entry) {
            Ok(f) => f,
            Err(e) => {
                errors.push(docs[0].error(&here, false, e));
                continue;
            }
        };
        for f in files {
            let name = f.display().to_string();
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(docs[0].error(&here, false, format!("cannot read {name}: {e}")));
                    continue;
                }
            };
            let parsed =
                match parse_doc::<Included>(&text, &name, env, "it needs a `servers:` section") {
                    Ok(p) => p,
                    Err(ConfigErrors(e)) => {
                        errors.extend(e);
                        continue;
                    }
                };
            let mut doc = Located {
                file: name.clone(),
                index: parsed.index,
                interp: parsed.interp,
                profiles: Vec::new(),
            };
            for (pname, p) in parsed.value.servers {
                if cfg.servers.contains_key(&pname) {
                    let whose = if own.contains(&pname) {
                        "the main file".to_string()
                    } else {
                        docs.iter()
                            .find(|d| d.profiles.contains(&pname))
                            .map(|d| d.file.clone())
                            .unwrap_or_default()
                    };
                    let path = vec![Seg::Key("servers".into()), Seg::Key(pname.clone())];
                    errors.push(doc.error(
                        &path,
                        true,
                        format!("a profile of this name is already in {whose}"),
                    ));
                    continue;
                }
                doc.profiles.push(pname.clone());
                cfg.servers.insert(pname, p);
            }
            cfg.from_env.extend(doc.interp.from_env.iter().cloned());
            docs.push(doc);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}
