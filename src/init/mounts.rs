//! Step 2: the mounts systemd expects and WSL may not have made.
//!
//! - `/run`: WSL mounts a fresh tmpfs there before starting us. If it did not, we do (as
//!   NixOS' stage 2 does): systemd would otherwise mount one itself, after the activation,
//!   hiding `/run/current-system` and everything the activation put there.
//! - `/dev/shm`: current WSL bind-mounts `/run/shm` there; older WSL made it a symlink to
//!   `/run/shm`. systemd and NixOS want a mount point (a symlink there breaks
//!   `dev-shm.mount` and whatever bind-mounts `/dev` into a sandbox), so a symlink is
//!   replaced by what current WSL does: a bind of its target if that is a mount (one POSIX
//!   shared-memory space, as before), else a fresh tmpfs.
//! - `/`: recursively shared, so mounts made by services (and by `systemd-nspawn`, Docker's
//!   bind mounts) propagate as on any systemd host. Outside a container systemd does this
//!   itself; with `container=wsl` it leaves propagation alone, and WSL before 2.0 mounts `/`
//!   private.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

/// What `/dev/shm` is when we start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DevShm {
    /// A directory (mounted or not): systemd copes with it (it mounts a tmpfs if needed).
    Directory,
    /// A symlink; `mounted_target` is where it points if that is a mounted directory.
    Symlink { mounted_target: Option<PathBuf> },
    /// Missing, or something else: systemd creates and mounts it itself.
    Other,
}

/// What to do about `/dev/shm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShmPlan {
    Keep,
    /// Replace the symlink by a directory and bind-mount this onto it.
    Bind(PathBuf),
    /// Replace the symlink by a directory with a fresh tmpfs on it.
    Tmpfs,
}

/// The decision, as plain data.
pub(crate) fn plan_dev_shm(found: &DevShm) -> ShmPlan {
    match found {
        DevShm::Symlink {
            mounted_target: Some(target),
        } => ShmPlan::Bind(target.clone()),
        DevShm::Symlink {
            mounted_target: None,
        } => ShmPlan::Tmpfs,
        DevShm::Directory | DevShm::Other => ShmPlan::Keep,
    }
}

/// Every step; failures are logged and skipped.
pub(crate) fn prepare() {
    let run = Path::new("/run");
    if run.is_dir() && !crate::sys::fs::is_mountpoint(run) {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        match mount(Some("tmpfs"), run, Some("tmpfs"), flags, Some("mode=755")) {
            Ok(()) => log::info!("/run was not a mount; mounted a tmpfs"),
            Err(e) => log::warn!("cannot mount a tmpfs on /run: {e}"),
        }
    }
    let shm = Path::new("/dev/shm");
    let plan = plan_dev_shm(&inspect(shm));
    if plan != ShmPlan::Keep {
        match fix_dev_shm(shm, &plan) {
            Ok(()) => log::info!("/dev/shm was a symlink; now {plan:?}"),
            Err(e) => log::warn!("cannot turn the /dev/shm symlink into a mount: {e}"),
        }
    }
    let shared = MsFlags::MS_REC | MsFlags::MS_SHARED;
    if let Err(e) = mount(None::<&str>, "/", None::<&str>, shared, None::<&str>) {
        log::warn!("cannot make / shared: {e}");
    }
}

fn inspect(shm: &Path) -> DevShm {
    match std::fs::symlink_metadata(shm) {
        Ok(m) if m.file_type().is_symlink() => DevShm::Symlink {
            mounted_target: std::fs::canonicalize(shm)
                .ok()
                .filter(|t| t.is_dir() && crate::sys::fs::is_mountpoint(t)),
        },
        Ok(m) if m.is_dir() => DevShm::Directory,
        _ => DevShm::Other,
    }
}

fn fix_dev_shm(shm: &Path, plan: &ShmPlan) -> nix::Result<()> {
    let io = |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    std::fs::remove_file(shm).map_err(io)?;
    std::fs::DirBuilder::new()
        .mode(0o1777)
        .create(shm)
        .map_err(io)?;
    // The umask may have cleared bits; shared memory needs a sticky, world-writable directory.
    std::fs::set_permissions(shm, std::fs::Permissions::from_mode(0o1777)).map_err(io)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    match plan {
        ShmPlan::Bind(target) => mount(
            Some(target.as_path()),
            shm,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
        ShmPlan::Tmpfs => mount(Some("tmpfs"), shm, Some("tmpfs"), flags, Some("mode=1777")),
        ShmPlan::Keep => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_symlink_is_replaced() {
        assert_eq!(plan_dev_shm(&DevShm::Directory), ShmPlan::Keep);
        assert_eq!(plan_dev_shm(&DevShm::Other), ShmPlan::Keep);
        assert_eq!(
            plan_dev_shm(&DevShm::Symlink {
                mounted_target: Some("/run/shm".into())
            }),
            ShmPlan::Bind("/run/shm".into())
        );
        assert_eq!(
            plan_dev_shm(&DevShm::Symlink {
                mounted_target: None
            }),
            ShmPlan::Tmpfs
        );
    }
}
