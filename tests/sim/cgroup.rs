//! Each distro gets its own cgroup2 directory. WSL is cgroup2-only; a test host may be hybrid
//! (v1 controllers plus cgroup2 at /sys/fs/cgroup/unified), so the distro's cgroup lives in
//! whichever cgroup2 hierarchy the host has, the distro's init unshares a cgroup namespace
//! there and mounts cgroup2 at its `/sys/fs/cgroup`: systemd inside sees a pure v2 tree that
//! it owns and cannot reach the host's cgroups.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The host's cgroup2 mount: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid).
pub fn host_cgroup2() -> Result<PathBuf> {
    for dir in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Ok(st) = nix::sys::statfs::statfs(dir) {
            if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
                return Ok(PathBuf::from(dir));
            }
        }
    }
    bail!("no cgroup2 hierarchy on this host (neither /sys/fs/cgroup nor /sys/fs/cgroup/unified)")
}

/// The parent of all simulator cgroups.
pub fn sim_root() -> Result<PathBuf> {
    Ok(host_cgroup2()?.join("nixos-wsl-sim"))
}

/// Creates the cgroup of distro instance `id` (`<name>-<harness pid>-<n>`), after removing
/// empty leftovers of harness processes that died without cleaning up.
pub fn create(id: &str) -> Result<PathBuf> {
    let root = sim_root()?;
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    if let Ok(entries) = fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let owner = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let orphaned = owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if orphaned && e.path().is_dir() && !populated(&e.path()) {
                let _ = remove_tree(&e.path());
            }
        }
    }
    let dir = root.join(id);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Moves `pid` (0 = the caller) into `cgroup`.
pub fn enter(cgroup: &Path, pid: i32) -> Result<()> {
    fs::write(cgroup.join("cgroup.procs"), pid.to_string())
        .with_context(|| format!("moving {pid} into {}", cgroup.display()))
}

/// Whether any process is still in `cgroup` or below it.
pub fn populated(cgroup: &Path) -> bool {
    fs::read_to_string(cgroup.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// All host pids in `cgroup` and below it.
pub fn pids(cgroup: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(s) = fs::read_to_string(cgroup.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(cgroup) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(pids(&e.path()));
            }
        }
    }
    out
}

/// Removes `cgroup` and whatever systemd created below it, once the distro's processes are
/// gone (waits up to `timeout` for the kernel to finish reaping them).
pub fn remove(cgroup: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while populated(cgroup) {
        if Instant::now() > deadline {
            bail!("{} still has processes after {timeout:?}", cgroup.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    remove_tree(cgroup)
}

/// rmdir depth-first (cgroup directories cannot be removed recursively in one go).
fn remove_tree(dir: &Path) -> Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing cgroup {}", dir.display())),
    }
}
