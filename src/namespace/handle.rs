//! The namespace's identity on disk: an nsfs bind mount of its PID namespace at
//! `/run/nixos-wsl/ns/pid`, on a private tmpfs, and the outer PID of its init as a hint.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::paths::{HANDLE_DIR, INIT_PID_HINT, PID_HANDLE, READY_FILE, STATE_DIR};

/// An open handle to the systemd namespace of this boot: its PID namespace, bound at
/// [`PID_HANDLE`] while systemd's process was already PID 1 there but had not exec'd systemd
/// yet (see `systemd::spawn`), so no systemd can run that no handle names. The mount
/// namespace to join is systemd's own (`/proc/<pid>/ns/mnt`).
pub(crate) struct Handle {
    pub(super) pid_ns: OwnedFd,
    /// Inode of the PID namespace: its identity, as in `/proc/<pid>/ns/pid -> pid:[<ino>]`.
    pub(crate) pid_ino: u64,
}

/// Opens the handle. `Ok(None)` when there is none or it is not a namespace file (a stale
/// plain file, garbage, a handle whose bind mount is gone).
pub(crate) fn open_handle() -> Result<Option<Handle>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(PID_HANDLE)
    {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {PID_HANDLE}")),
    };
    let fs = fstatfs(file.as_fd()).with_context(|| format!("inspecting {PID_HANDLE}"))?;
    if fs.filesystem_type() != NSFS_MAGIC {
        return Ok(None);
    }
    let pid_ino = file.metadata()?.ino();
    // A handle naming our own PID namespace would make us "join" ourselves and boot without
    // systemd: such a handle is garbage, whoever bound it.
    if std::fs::metadata("/proc/self/ns/pid").is_ok_and(|own| own.ino() == pid_ino) {
        return Ok(None);
    }
    Ok(Some(Handle {
        pid_ns: OwnedFd::from(file),
        pid_ino,
    }))
}

/// The PID the hint names, if it holds one (checked against the handle by the caller).
pub(super) fn read_hint() -> Option<i32> {
    std::fs::read_to_string(INIT_PID_HINT)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
}

pub(super) fn write_hint(pid: i32) -> Result<()> {
    crate::sys::state::write_atomic(Path::new(INIT_PID_HINT), format!("{pid}\n").as_bytes())
}

/// Mounts a private tmpfs on the handle directory (once per boot). Private, so the handle bind
/// mounts made later never propagate: not out into other WSL mount namespaces, and not into
/// the systemd namespace itself (a mount namespace must not hold a handle to itself).
pub(crate) fn prepare_handle_dir() -> Result<()> {
    let state = std::fs::metadata(STATE_DIR).with_context(|| format!("inspecting {STATE_DIR}"))?;
    match std::fs::symlink_metadata(HANDLE_DIR) {
        Ok(meta) if meta.is_dir() && meta.dev() != state.dev() => return Ok(()),
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => std::fs::remove_file(HANDLE_DIR)
            .with_context(|| format!("removing stale {HANDLE_DIR}"))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {HANDLE_DIR}")),
    }
    match std::fs::DirBuilder::new().mode(0o700).create(HANDLE_DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {HANDLE_DIR}")),
    }
    mount(
        Some("nixos-wsl"),
        HANDLE_DIR,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64k"),
    )
    .with_context(|| format!("mounting a tmpfs on {HANDLE_DIR}"))?;
    mount(
        None::<&str>,
        HANDLE_DIR,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("making {HANDLE_DIR} private"))
}

/// Bind-mounts the PID namespace of `init` (systemd's process, PID 1 of the new namespace,
/// not yet exec'd) onto the handle path and records its PID as the lookup hint. The handle
/// dir is private, so the bind never propagates. (A mount-namespace file would be the other
/// candidate, but binding one fails spuriously with EINVAL on kernels whose namespace IDs are
/// not allocated in creation order across CPUs, Linux >= 6.18.)
pub(crate) fn bind_handle(init: nix::unistd::Pid) -> Result<()> {
    crate::sys::state::expect_kind(Path::new(PID_HANDLE), crate::sys::state::Kind::File)?;
    File::create(PID_HANDLE).with_context(|| format!("creating {PID_HANDLE}"))?;
    let source = format!("/proc/{init}/ns/pid");
    mount(
        Some(source.as_str()),
        PID_HANDLE,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {source} on {PID_HANDLE}"))?;
    write_hint(init.as_raw())
}

/// Forgets a dead namespace: detaches the handle mount and removes the readiness record.
pub(crate) fn clear_handle() -> Result<()> {
    use crate::sys::state::{expect_kind, move_aside, Kind};
    // Only ever inside the real handle directory: a link planted at `ns` could lead anywhere.
    if !expect_kind(Path::new(HANDLE_DIR), Kind::Dir)? {
        // UMOUNT_NOFOLLOW: a symlink planted at the handle path must not unmount its target.
        // Repeat: an interrupted start may have bound it more than once.
        while umount2(PID_HANDLE, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_ok() {}
        for file in [PID_HANDLE, INIT_PID_HINT] {
            // Unlinking never follows the last component; a directory there is moved aside.
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => move_aside(Path::new(file))?,
            }
        }
    }
    match std::fs::remove_file(READY_FILE) {
        Err(e) if e.kind() != ErrorKind::NotFound => move_aside(Path::new(READY_FILE)),
        _ => Ok(()),
    }
}
