//! The one check that stands between a simulator bug and a systemd booted on the host: every
//! role process that is about to start something in a distro first proves that its `/` is
//! the distro's root and not the machine's.

use std::path::Path;

use anyhow::{bail, Result};

use super::sys::file_id;

/// The file only the simulator's rootfs has at `/` (written by tests/rootfs/customize.sh).
pub const MARKER: &str = "/.nixos-wsl-sim-rootfs";

/// The identity of the host's `/`, recorded before entering any namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRoot(pub (u64, u64));

impl HostRoot {
    /// Records the current `/` (call before unshare/setns/pivot_root).
    pub fn record() -> Result<HostRoot> {
        Ok(HostRoot(file_id(Path::new("/"))?))
    }
}

/// Succeeds only if the current `/` is not the host root recorded in `host` and holds the
/// simulator's marker file. Callers abort (and exec nothing) on error.
pub fn check_root(host: HostRoot) -> Result<()> {
    check_root_at(Path::new("/"), host)
}

/// [`check_root`] for an arbitrary directory (for unit tests).
pub fn check_root_at(root: &Path, host: HostRoot) -> Result<()> {
    let here = file_id(root)?;
    if here == host.0 {
        bail!(
            "refusing to continue: {} is the host's root directory (dev {} ino {}), not a simulated distro",
            root.display(),
            here.0,
            here.1
        );
    }
    let marker = root.join(MARKER.trim_start_matches('/'));
    match std::fs::symlink_metadata(&marker) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        _ => bail!(
            "refusing to continue: {} has no {} marker, so it is not the simulator's rootfs",
            root.display(),
            MARKER
        ),
    }
}
