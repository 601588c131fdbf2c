//! The host through sysinfo: CPU and memory, and for each server the CPU and resident memory
//! summed over its processes.
use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerUsage {
    pub name: String,
    pub processes: usize,
    /// Percent of one core, summed (200 = two cores busy).
    pub cpu_pct: f64,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostSample {
    /// Percent of the whole machine.
    pub cpu_pct: f64,
    pub cores: usize,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub load_1m: f64,
    pub servers: Vec<ServerUsage>,
}

pub struct HostSampler {
    sys: System,
}

impl Default for HostSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// The server's processes: its main process and everything below it, found through the
/// kernel's child lists (cost grows with the server's processes, not the machine's).
pub fn process_tree(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() && out.len() < 4096 {
        let p = out[i];
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    out
}

impl HostSampler {
    pub fn new() -> Self {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        Self { sys }
    }

    /// `servers`: (name, main pid) of each running server.
    pub fn sample(&mut self, servers: &[(String, i32)]) -> HostSample {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let trees: Vec<(String, Vec<i32>)> = servers
            .iter()
            .filter(|(_, pid)| *pid > 1)
            .map(|(n, pid)| (n.clone(), process_tree(*pid)))
            .collect();
        let pids: Vec<Pid> = trees
            .iter()
            .flat_map(|(_, t)| t.iter().map(|p| Pid::from_u32(*p as u32)))
            .collect();
        if !pids.is_empty() {
            self.sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
        let usage = trees
            .into_iter()
            .map(|(name, tree)| {
                let procs: Vec<_> = tree
                    .iter()
                    .filter_map(|p| self.sys.process(Pid::from_u32(*p as u32)))
                    .collect();
                ServerUsage {
                    name,
                    processes: procs.len(),
                    cpu_pct: procs.iter().map(|p| f64::from(p.cpu_usage())).sum(),
                    rss_bytes: procs.iter().map(|p| p.memory()).sum(),
                }
            })
            .collect();
        HostSample {
            cpu_pct: f64::from(self.sys.global_cpu_usage()),
            cores: self.sys.cpus().len(),
            memory_used_bytes: self.sys.used_memory(),
            memory_total_bytes: self.sys.total_memory(),
            load_1m: System::load_average().one,
            servers: usage,
        }
    }
}
