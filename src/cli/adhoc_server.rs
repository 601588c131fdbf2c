//! `server start --model M`: a server for any model, from a profile made on the spot (the
//! same one the console's launch form makes), optionally kept with `--save`.
use crate::config::save::{self, NewProfile};
use crate::supervisor::Supervisor;
use std::path::Path;
use std::process::ExitCode;

/// A server for any model, without a profile.
#[derive(clap::Args, Debug, Default)]
pub struct AdhocArgs {
    /// A model folder or a hub id (as `vllm serve` takes it).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, requires = "model", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub tensor_parallel_size: Option<u32>,
    /// Default: the first free port from 8000.
    #[arg(long, requires = "model")]
    pub port: Option<u16>,
    #[arg(long, requires = "model", value_parser = crate::input::tokens_text)]
    pub max_model_len: Option<u64>,
    #[arg(long, requires = "model", value_parser = crate::input::fraction)]
    pub gpu_memory_utilization: Option<f64>,
    #[arg(long, requires = "model")]
    pub dtype: Option<String>,
    /// GPUs by index (`0,1`): CUDA_VISIBLE_DEVICES for the server.
    #[arg(long, requires = "model", value_delimiter = ',')]
    pub gpus: Option<Vec<u32>>,
    #[arg(long, requires = "model")]
    pub served_model_name: Option<String>,
    /// The vLLM to run (default: `vllm` on PATH).
    #[arg(long, requires = "model")]
    pub executable: Option<String>,
    /// Keep it as a profile (`servers.d/NAME.yaml` beside the config, which gains an
    /// `include:` line if it has none).
    #[arg(long, requires = "model")]
    pub save: bool,
}

/// The profile to run, with the config's own profiles' ports kept clear.
pub fn new_profile(sup: &Supervisor, name: String, a: &AdhocArgs) -> NewProfile {
    let taken: Vec<u16> = sup.config().servers.values().map(|p| p.port).collect();
    NewProfile {
        name,
        model: a.model.clone().unwrap_or_default(),
        served_model_name: a.served_model_name.clone(),
        host: None,
        port: a
            .port
            .unwrap_or_else(|| crate::supervisor::launch::free_port(8000, &taken)),
        tensor_parallel_size: a.tensor_parallel_size,
        max_model_len: a.max_model_len,
        gpu_memory_utilization: a.gpu_memory_utilization,
        dtype: a.dtype.clone(),
        gpus: a.gpus.clone(),
        route: None,
        executable: a.executable.clone(),
        env: Vec::new(),
    }
}

pub fn prepare(
    sup: Supervisor,
    name: Option<String>,
    a: AdhocArgs,
) -> Result<(Supervisor, String), ExitCode> {
    let model = a.model.clone().unwrap_or_default();
    let name = name.unwrap_or_else(|| save::name_for(&model));
    if sup.config().servers.contains_key(&name) {
        eprintln!("error: a profile `{name}` already exists: give the new server another name (`server start NAME --model ...`)");
        return Err(ExitCode::from(2));
    }
    let np = new_profile(&sup, name.clone(), &a);
    let profile = save::to_profile(&np).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if a.save {
        let file = sup.config().file.clone();
        if file.starts_with('<') {
            eprintln!("error: --save needs a config file (this runs on the built-in default): pass --config FILE");
            return Err(ExitCode::from(2));
        }
        match save::save_profile(Path::new(&file), &np) {
            Ok(s) => {
                eprintln!("saved profile {name} in {}", s.file.display());
                if s.included {
                    eprintln!("{file} gained `include: [{}]` at its end", save::SAVED_DIR);
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok((sup.with_profile(&name, profile), name))
}
