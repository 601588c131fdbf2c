//! The state directory shared by every invocation and the console:
//! `servers/NAME/{record.json, launch.json, stop.json, monitor.lock, start.lock, server.log*}`.
use super::launch::LaunchSpec;
use super::record::Record;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

/// `$ANORAG_STATE_DIR`, else `$XDG_STATE_HOME/anorag-tui`, else `~/.local/state/anorag-tui`
/// (`~` from `$HOME`, else the account's home directory). Never a shared, predictable place
/// such as `/tmp`: the directory holds server records and logs.
pub fn default_root() -> std::io::Result<PathBuf> {
    root_from(
        &|k| std::env::var_os(k).filter(|v| !v.is_empty()),
        account_home,
    )
}

fn root_from(
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    account_home: fn() -> Option<PathBuf>,
) -> std::io::Result<PathBuf> {
    if let Some(d) = env("ANORAG_STATE_DIR") {
        return Ok(PathBuf::from(d));
    }
    let base = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .or_else(|| account_home().map(|h| h.join(".local/state")))
        .ok_or_else(|| {
            std::io::Error::other(
                "no private place for the state directory: HOME is unset and this account has no home directory; set ANORAG_STATE_DIR",
            )
        })?;
    Ok(base.join("anorag-tui"))
}

/// The home directory in the password database, for a process started without `HOME`.
fn account_home() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 4096];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into our struct and buffer, and sets `out` on success.
    let r = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    if r != 0 || out.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into `buf`, NUL-terminated, while `buf` lives.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    let p = PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    (p.is_absolute() && p != Path::new("/")).then_some(p)
}

/// Creates `dir` (and its parents) private to this user, and tightens it if it is ours and
/// open to others.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let m = std::fs::metadata(dir)?;
    // SAFETY: getuid has no preconditions.
    if m.uid() == unsafe { libc::getuid() } && m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// An exclusive `flock` held until dropped. The kernel drops it when the holder dies, so a
/// held lock means a live holder, whatever pid happened to be reused.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, or `None` when another process holds it.
    pub fn try_take(path: &Path) -> std::io::Result<Option<Lock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)?;
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            Ok(Some(Lock { _file: file }))
        } else {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }

    /// True when some live process holds the lock at `path`.
    pub fn is_held(path: &Path) -> bool {
        if !path.exists() {
            return false;
        }
        matches!(Lock::try_take(path), Ok(None))
    }
}

/// A stop request left for the monitor before it is signalled.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StopRequest {
    pub timeout_s: f64,
    /// Start the server again once it is down (`server restart`).
    pub restart: bool,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn server_dir(&self, name: &str) -> PathBuf {
        self.root.join("servers").join(name)
    }

    /// Creates the server's directory (private: launch specs name secret variables), the
    /// root private too.
    pub fn ensure(&self, name: &str) -> std::io::Result<PathBuf> {
        ensure_private_dir(&self.root)?;
        let d = self.server_dir(name);
        ensure_private_dir(&d)?;
        Ok(d)
    }

    pub fn record_path(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("record.json")
    }
    pub fn launch_path(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("launch.json")
    }
    pub fn stop_path(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("stop.json")
    }
    pub fn monitor_lock(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("monitor.lock")
    }
    pub fn start_lock(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("start.lock")
    }
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("server.log")
    }
    pub fn monitor_log(&self, name: &str) -> PathBuf {
        self.server_dir(name).join("monitor.log")
    }

    pub fn read_record(&self, name: &str) -> Option<Record> {
        let text = std::fs::read_to_string(self.record_path(name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_record(&self, r: &Record) -> std::io::Result<()> {
        write_atomic(
            &self.record_path(&r.name),
            serde_json::to_vec_pretty(r)?.as_slice(),
        )
    }

    pub fn read_launch(&self, name: &str) -> std::io::Result<LaunchSpec> {
        let text = std::fs::read_to_string(self.launch_path(name))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn write_launch(&self, name: &str, spec: &LaunchSpec) -> std::io::Result<()> {
        write_atomic(
            &self.launch_path(name),
            serde_json::to_vec_pretty(spec)?.as_slice(),
        )
    }

    pub fn request_stop(&self, name: &str, req: StopRequest) -> std::io::Result<()> {
        write_atomic(&self.stop_path(name), serde_json::to_vec(&req)?.as_slice())
    }

    pub fn take_stop_request(&self, name: &str) -> Option<StopRequest> {
        let p = self.stop_path(name);
        let text = std::fs::read_to_string(&p).ok()?;
        let _ = std::fs::remove_file(&p);
        serde_json::from_str(&text).ok()
    }

    pub fn monitor_alive(&self, name: &str) -> bool {
        Lock::is_held(&self.monitor_lock(name))
    }

    /// Names of servers that have a directory here (profiles may have been removed since).
    pub fn known_servers(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("servers"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Write-then-rename, so a reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_home_the_root_is_the_accounts_never_tmp() {
        let none = |_: &str| None;
        let home = || Some(PathBuf::from("/home/op"));
        assert_eq!(
            root_from(&none, home).unwrap(),
            Path::new("/home/op/.local/state/anorag-tui")
        );
        let e = root_from(&none, || None).unwrap_err().to_string();
        assert!(e.contains("set ANORAG_STATE_DIR"), "{e}");
        let env = |k: &str| (k == "HOME").then(|| "/h".into());
        assert_eq!(
            root_from(&env, || None).unwrap(),
            Path::new("/h/.local/state/anorag-tui")
        );
        assert!(account_home().is_some_and(|h| h.is_absolute()));
    }

    #[test]
    fn the_state_root_and_server_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("state");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = StateDir::new(&root);
        let s = d.ensure("demo").unwrap();
        for p in [&root, &s] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", p.display());
        }
    }
}
