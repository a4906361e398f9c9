//! The NixOS activation: exactly once per boot, before systemd starts.
//!
//! NixOS' stage 2 normally runs the activation script; in WSL nothing does, so the first
//! launch of every boot runs it (WSL gives every boot a fresh `/run`, hence a missing
//! `/run/current-system`). Called with the state lock held, so concurrent first launches
//! wait for it instead of running it twice (NixOS-WSL #11, #125, #602).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};

use crate::paths::{ACTIVATED_FILE, ACTIVATION_LOG, CURRENT_SYSTEM};
use crate::sys::deadline::Deadline;

/// True when this boot still needs the activation: nothing created `/run/current-system` and
/// no launch of this boot ran it yet (a failed activation is not retried on every launch).
pub(crate) fn needed() -> bool {
    let exists = |p: &str| std::fs::symlink_metadata(p).is_ok();
    !exists(CURRENT_SYSTEM) && !exists(ACTIVATED_FILE)
}

/// True when this boot's activation ran and did not create `/run/current-system`.
pub(crate) fn failed() -> bool {
    std::fs::symlink_metadata(ACTIVATED_FILE).is_ok()
        && std::fs::symlink_metadata(CURRENT_SYSTEM).is_err()
}

/// Runs `activate` if this boot needs it. The script's output goes to the activation log; a
/// failure is returned (the caller reports it and goes on: a shell matters more).
pub(crate) fn run_once(activate: &Path) -> Result<()> {
    if !needed() {
        return Ok(());
    }
    protect_store();
    let result = run(activate);
    // Recorded whatever the outcome: one attempt per boot.
    let _ = crate::sys::state::write_atomic(Path::new(ACTIVATED_FILE), b"");
    link_booted_system();
    result
}

fn run(activate: &Path) -> Result<()> {
    if !activate.exists() {
        bail!("activation script {} not found", activate.display());
    }
    let log = crate::sys::state::open_log(Path::new(ACTIVATION_LOG))?;
    let mut command = Command::new(activate);
    command
        .env_clear()
        // As NixOS-WSL and stage-2 do: the locale archive may not exist yet.
        .env("LANG", "C.UTF-8")
        .env("PATH", "/run/current-system/sw/bin:/usr/bin:/bin")
        .env("HOME", "/root")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .current_dir("/");
    // SAFETY: prctl and the signal reset are async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            // If the launcher is killed mid-activation, stop the activation too: the next launch
            // then runs it again from the start instead of racing a leftover one.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            crate::sys::signals::reset_for_exec();
            Ok(())
        });
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", activate.display()))?;
    if !status.success() {
        bail!("activation failed ({status}); see {ACTIVATION_LOG}");
    }
    Ok(())
}

/// For launches that find systemd already running (WSL's own systemd mode): waits until the
/// activation, which `nixos-wsl-init` runs before systemd, has created `/run/current-system`,
/// at most until `deadline`; says so on stderr if that takes more than a second. Watches `/run`
/// with inotify rather than polling. True when it exists.
pub(crate) fn wait_for_current_system(deadline: std::time::Instant) -> bool {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    // The activation also counts as finished when it failed without creating the link
    // (nixos-wsl-init records every attempt): waiting longer cannot help then.
    let exists = || {
        std::fs::symlink_metadata(CURRENT_SYSTEM).is_ok()
            || std::fs::symlink_metadata(ACTIVATED_FILE).is_ok()
    };
    if exists() {
        return true;
    }
    let Ok(inotify) = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) else {
        return exists();
    };
    let watch = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
    if inotify.add_watch("/run", watch).is_err() {
        return exists();
    }
    // Best effort: the directory exists once nixos-wsl-init started the activation.
    let _ = inotify.add_watch(crate::paths::STATE_DIR, watch);
    let mut deadline = Deadline::at(deadline)
        .telling(|| eprintln!("nixos-wsl: waiting for the NixOS activation to finish..."));
    // Checked again after the watch exists, so a creation in between is not missed.
    while !exists() {
        if deadline.passed() {
            return false;
        }
        deadline.readable(&inotify);
        let _ = inotify.read_events();
    }
    true
}

/// NixOS keeps `/nix/store` read-only (`boot.readOnlyNixStore`): a read-only bind mount of it
/// onto itself, made once per boot before the activation. Skipped where there is no store.
fn protect_store() {
    let store = Path::new("/nix/store");
    if !store.is_dir() || crate::sys::fs::is_mountpoint(store) {
        return;
    }
    let bind = mount(
        Some(store),
        store,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    if let Err(e) = bind.and_then(|()| mount(None::<&str>, store, None::<&str>, ro, None::<&str>)) {
        log::warn!("cannot make /nix/store read-only: {e}");
    }
}

/// `/run/booted-system`, as NixOS' stage 2 creates it: the generation this boot started with.
fn link_booted_system() {
    if let Ok(target) = std::fs::canonicalize(CURRENT_SYSTEM) {
        let _ = std::os::unix::fs::symlink(target, "/run/booted-system");
    }
}
