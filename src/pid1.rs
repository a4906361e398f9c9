//! What PID 1 of our PID namespace is, as the login shell, the admin CLI and the init ask it:
//! nixos-wsl-init (WSL's systemd mode, until systemd replaces it), and whether its systemd
//! could not be started this boot. Its own module, so the shell and the init need not
//! depend on each other.

use std::path::Path;

use crate::paths::NO_SYSTEMD_MARKER;

/// The name PID 1 carries (`/proc/1/comm`) while this program runs, until systemd replaces
/// it. WSL execs us as `/sbin/init`, which would show as `init`; a distinct name lets every
/// user (who may not read `/proc/1/exe`) tell "activation still running" from another init.
pub(crate) const COMM: &str = "nixos-wsl-init";

/// True when PID 1 of our PID namespace is this program: WSL's systemd mode while the
/// activation runs (or, if systemd could not be exec'd, for the whole boot). Readable by
/// every user. The login shell treats this like "inside systemd": it waits for the
/// activation and never starts a systemd of its own.
pub(crate) fn is_nixos_wsl_init() -> bool {
    std::fs::read("/proc/1/comm").is_ok_and(|comm| comm.trim_ascii_end() == COMM.as_bytes())
}

/// True when PID 1 is this program for the whole boot: systemd could not be exec'd.
pub(crate) fn systemd_failed_this_boot() -> bool {
    is_nixos_wsl_init() && Path::new(NO_SYSTEMD_MARKER).exists()
}
