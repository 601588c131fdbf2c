//! The Models pane's state: the models found (and when), the selected one, and the launch
//! form with its fields as typed. Pure functions turn the form into a profile and a fit
//! estimate; the update and the view share them.
use crate::config::save::{self, NewProfile};
use crate::models::fit::{Fit, Memory};
use crate::models::{plan, Model, Source};
use crate::telemetry::sampler::GpuView;

pub const LAUNCH_FIELDS: [&str; 9] = [
    "name",
    "executable",
    "GPUs",
    "tensor parallel",
    "max model len",
    "GPU memory util",
    "dtype",
    "port",
    "route",
];

/// The field that names the route the server will serve.
pub const ROUTE_FIELD: usize = 8;
pub const PORT_FIELD: usize = 7;

/// A route of the config a launched server can serve: its name, the port of its URL on this
/// machine, and the model name it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRoute {
    pub name: String,
    pub port: u16,
    pub model: String,
}

/// The launch form: the model it starts and each field's text.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchForm {
    /// What `vllm serve` is given: a hub id (served from the cache) or a folder.
    pub model: String,
    pub values: [String; LAUNCH_FIELDS.len()],
    pub field: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ModelsPane {
    pub list: Vec<Model>,
    pub selected: usize,
    /// Unix seconds of the last scan (shown as its age; `r` scans again).
    pub scanned_at: Option<f64>,
    pub scanning: bool,
    pub form: Option<LaunchForm>,
    /// The form's defaults: the `vllm` the config's profiles run, ports they hold.
    pub executable: String,
    pub taken_ports: Vec<u16>,
    /// The console runs on a config file (a profile can be saved beside it).
    pub can_save: bool,
    /// vLLM's CPU build KV space (VLLM_CPU_KVCACHE_SPACE in the console's environment).
    pub cpu_kv: Option<u64>,
    /// The config's routes to this machine (a launched server may serve one of them).
    pub routes: Vec<LocalRoute>,
}

impl ModelsPane {
    pub fn current(&self) -> Option<&Model> {
        self.list.get(self.selected)
    }
}

/// A form for `m`, or why it cannot be launched with vLLM.
pub fn open_form(p: &ModelsPane, m: &Model) -> Result<LaunchForm, String> {
    if m.found.source == Source::Ollama {
        return Err(format!(
            "{} is in Ollama's store: an Ollama route serves it, not vLLM",
            m.id()
        ));
    }
    let model = match m.found.source {
        Source::HfCache if m.found.revision.is_some() => m.id().to_string(),
        _ => m.found.path.display().to_string(),
    };
    let values = [
        save::name_for(m.id()),
        p.executable.clone(),
        String::new(),
        "1".into(),
        m.shape
            .as_ref()
            .and_then(|s| s.context_length)
            .map(|c| c.min(32_768).to_string())
            .unwrap_or_default(),
        "0.9".into(),
        "auto".into(),
        save::next_port(&p.taken_ports).to_string(),
        String::new(),
    ];
    Ok(LaunchForm {
        model,
        values,
        field: 0,
    })
}

fn opt(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty()).then_some(v)
}

/// A route typed into the form: the port and the served model name follow it, so the route
/// reaches the new server as it is.
pub fn route_chosen(p: &ModelsPane, f: &mut LaunchForm) {
    if let Some(r) = p
        .routes
        .iter()
        .find(|r| r.name == f.values[ROUTE_FIELD].trim())
    {
        f.values[PORT_FIELD] = r.port.to_string();
    }
}

/// The form as a profile; the error names the field at fault.
pub fn profile_for(p: &ModelsPane, f: &LaunchForm) -> Result<NewProfile, String> {
    let mut np = profile(f)?;
    if let Some(name) = opt(&f.values[ROUTE_FIELD]) {
        let Some(r) = p.routes.iter().find(|r| r.name == name) else {
            let known: Vec<&str> = p.routes.iter().map(|r| r.name.as_str()).collect();
            return Err(format!(
                "route: no route `{name}` on this machine (routes: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        if r.port != np.port {
            return Err(format!(
                "port: route `{name}` reaches port {}, not {}",
                r.port, np.port
            ));
        }
        np.route = Some(r.name.clone());
        np.served_model_name = Some(r.model.clone());
    }
    Ok(np)
}

fn profile(f: &LaunchForm) -> Result<NewProfile, String> {
    let v = &f.values;
    let field = |i: usize, e: String| format!("{}: {e}", LAUNCH_FIELDS[i]);
    let name = v[0].trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(field(
            0,
            format!("`{name}`: use letters, digits, `_` and `-`"),
        ));
    }
    let gpus = match opt(&v[2]) {
        None => None,
        Some(t) => Some(
            t.split(',')
                .map(|g| {
                    g.trim().parse::<u32>().map_err(|_| {
                        field(2, format!("`{t}` is not a list of GPU indexes like 0,1"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let tp = match opt(&v[3]) {
        None => None,
        Some(t) => Some(
            t.parse::<u32>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| field(3, format!("`{t}` is not a size from 1 to 1024")))?,
        ),
    };
    let max_len = opt(&v[4])
        .map(|t| crate::input::tokens_text(t).map_err(|e| field(4, e)))
        .transpose()?;
    let util = opt(&v[5])
        .map(|t| crate::input::fraction(t).map_err(|e| field(5, e)))
        .transpose()?;
    let port = v[7]
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| field(7, format!("`{}` is not a port", v[7].trim())))?;
    Ok(NewProfile {
        name,
        model: f.model.clone(),
        port,
        tensor_parallel_size: tp.filter(|t| *t > 1),
        max_model_len: max_len,
        gpu_memory_utilization: util,
        dtype: opt(&v[6]).filter(|d| *d != "auto").map(str::to_string),
        gpus,
        executable: opt(&v[1]).filter(|e| *e != "vllm").map(str::to_string),
        ..NewProfile::default()
    })
}

/// This machine's GPUs from the GPU pane's latest reading: (index, total, used).
pub fn local_gpus(g: &GpuView) -> Vec<(u32, u64, u64)> {
    g.samples
        .iter()
        .filter(|s| s.source == "local" && s.status.is_ok())
        .flat_map(|s| s.devices.iter())
        .filter_map(|d| {
            Some((
                d.index,
                d.memory_total_bytes?,
                d.memory_used_bytes.unwrap_or(0),
            ))
        })
        .collect()
}

/// The estimate for the form as typed (or for the model's defaults without a form).
pub fn fit(
    p: &ModelsPane,
    m: &Model,
    form: Option<&LaunchForm>,
    gpus: &[(u32, u64, u64)],
) -> Option<Result<Fit, String>> {
    if m.found.source == Source::Ollama {
        return None;
    }
    let np = match form {
        Some(f) => profile_for(p, f).ok()?,
        None => NewProfile {
            model: m.id().to_string(),
            ..NewProfile::default()
        },
    };
    let prof = save::to_profile(&NewProfile {
        name: "x".into(),
        ..np
    })
    .ok()?;
    let mem = match p.cpu_kv {
        Some(b) => Memory::CpuKv(b),
        None if gpus.is_empty() => Memory::Unknown,
        None => Memory::Gpus(plan::gpus_for(&prof, gpus)),
    };
    Some(plan::estimate(m, &plan::settings_of(&prof), &mem))
}
