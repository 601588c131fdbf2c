//! What `/proc` says about processes: identity (pid + start time + boot), groups, trees,
//! and who listens on a port. Linux only, like vLLM itself.
use std::collections::{HashMap, HashSet};

/// The fields of `/proc/PID/stat` that the supervisor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks after boot: with the boot id, this tells a process from a later one that
    /// got the same pid.
    pub start_ticks: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub rss_pages: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Parses one `/proc/PID/stat` line. `comm` may hold spaces and parentheses, so the fields
/// after it are found from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let f: Vec<&str> = line.get(close + 2..)?.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        start_ticks: num(22)?,
        rss_pages: num(24)?,
    })
}

pub fn stat(pid: i32) -> Option<Stat> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
}

/// Every process's stat. Processes that end while we read are skipped.
pub fn all() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// This boot's id: start ticks are only comparable within one boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A process as recorded: it is "the same" only if pid, start time and boot all match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub pid: i32,
    pub start_ticks: u64,
    pub boot_id: String,
}

impl Identity {
    pub fn of(pid: i32) -> Option<Self> {
        stat(pid).map(|s| Identity {
            pid,
            start_ticks: s.start_ticks,
            boot_id: boot_id(),
        })
    }

    /// Alive and still the process that was recorded (not a later one with its pid).
    pub fn is_alive(&self) -> bool {
        match stat(self.pid) {
            Some(s) => {
                !s.is_zombie() && s.start_ticks == self.start_ticks && self.boot_id == boot_id()
            }
            None => false,
        }
    }
}

/// Live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    all()
        .into_iter()
        .filter(|s| s.pgrp == pgid && !s.is_zombie())
        .map(|s| s.pid)
        .collect()
}

/// Live descendants of `root` (not `root` itself), from the parent links in `procs`.
pub fn descendants_in(procs: &[Stat], root: i32) -> Vec<i32> {
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    for s in procs {
        kids.entry(s.ppid).or_default().push(s.pid);
    }
    let live: HashSet<i32> = procs
        .iter()
        .filter(|s| !s.is_zombie())
        .map(|s| s.pid)
        .collect();
    let mut out = Vec::new();
    let mut stack = vec![root];
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        for &c in kids.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                if live.contains(&c) {
                    out.push(c);
                }
                stack.push(c);
            }
        }
    }
    out
}

/// A server's processes: its group, plus descendants that left the group (setsid), all
/// found below `root` (the monitor, which is their subreaper).
pub fn server_processes(pgid: i32, root: Option<i32>) -> Vec<i32> {
    let procs = all();
    let mut set: HashSet<i32> = procs
        .iter()
        .filter(|s| s.pgrp == pgid && !s.is_zombie())
        .map(|s| s.pid)
        .collect();
    if let Some(r) = root {
        set.extend(descendants_in(&procs, r));
    }
    let mut v: Vec<i32> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// Sends `sig` to process group `pgid` and to each pid in `also`; ESRCH is not an error.
pub fn signal_all(pgid: i32, also: &[i32], sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is shared.
        unsafe { libc::kill(-pgid, sig) };
    }
    for &p in also {
        if p > 1 {
            // SAFETY: as above, for one process.
            unsafe { libc::kill(p, sig) };
        }
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "signal",
    }
}

/// Clock ticks per second and page size, for CPU and RSS from stat.
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Seconds since boot, for turning start ticks into an age.
pub fn uptime_secs() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The command line of a process, for messages ("port 8001 is used by pid 42 `python3 -m ...`").
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Which process listens on TCP `port` (any address), if this user may see it.
pub fn port_owner(port: u16) -> Option<i32> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, inode is field 9.
            let (Some(local), Some(st), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) && *st == "0A" {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.contains(target.to_string_lossy().as_ref()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Resident memory of a process (`/proc/PID/statm`'s second field, in pages).
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let line = "4242 (VLLM::Worker (1)) S 4200 4200 4200 0 -1 4194560 1 0 0 0 17 3 0 0 20 0 3 0 987654 1000000 2500 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "VLLM::Worker (1)");
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp), (4200, 4200));
        assert_eq!((s.utime_ticks, s.stime_ticks), (17, 3));
        assert_eq!(s.start_ticks, 987654);
        assert_eq!(s.rss_pages, 2500);
    }

    #[test]
    fn this_process_has_an_identity_and_a_reused_pid_does_not_match() {
        let me = Identity::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let later = Identity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!later.is_alive());
        let other_boot = Identity {
            boot_id: "another-boot".into(),
            ..me
        };
        assert!(!other_boot.is_alive());
    }

    #[test]
    fn descendants_follow_parent_links() {
        let mk = |pid, ppid, state| Stat {
            pid,
            comm: String::new(),
            state,
            ppid,
            pgrp: pid,
            start_ticks: 0,
            utime_ticks: 0,
            stime_ticks: 0,
            rss_pages: 0,
        };
        let procs = vec![
            mk(1, 0, 'S'),
            mk(10, 1, 'S'),
            mk(11, 10, 'S'),
            mk(12, 11, 'Z'),
            mk(13, 12, 'S'),
            mk(20, 1, 'S'),
        ];
        let mut d = descendants_in(&procs, 10);
        d.sort();
        assert_eq!(
            d,
            vec![11, 13],
            "zombies are not alive but their children are"
        );
    }
}
