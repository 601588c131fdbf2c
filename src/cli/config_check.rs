use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration: exit 0 when valid, 2 with `FILE:LINE:COL: message` lines otherwise.
    Check,
}

pub fn run(explicit: Option<&Path>, cmd: ConfigCmd) -> ExitCode {
    match cmd {
        ConfigCmd::Check => match super::load_config(explicit) {
            Ok((cfg, source)) => {
                let default = cfg.default_route().unwrap_or_default();
                let names: Vec<String> = cfg
                    .routes()
                    .iter()
                    .map(|r| {
                        let mut s = r.name.clone();
                        if r.name == default {
                            s.push('*');
                        }
                        if !r.fallback.is_empty() {
                            s.push_str(&format!(" -> {}", r.fallback.join(" -> ")));
                        }
                        s
                    })
                    .collect();
                println!("ok: {source}");
                println!("routes (* default): {}", names.join("; "));
                ExitCode::SUCCESS
            }
            Err(msg) => {
                eprintln!("{msg}");
                ExitCode::from(2)
            }
        },
    }
}
