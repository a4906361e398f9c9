//! Fixed paths shared by the programs, the Nix module and the tests.
//!
//! Runtime state lives under `/run/nixos-wsl/`: WSL mounts a fresh tmpfs on `/run` at every
//! distribution start, so everything here belongs to exactly one boot.

/// The login shell's configuration, written by the NixOS module (`key = value` lines).
pub(crate) const CONFIG_FILE: &str = "/etc/nixos-wsl.conf";

/// Per-boot runtime state directory.
pub(crate) const STATE_DIR: &str = "/run/nixos-wsl";

/// Lock serialising the "running / start / wait" decision between concurrent launches.
pub(crate) const LOCK_FILE: &str = "/run/nixos-wsl/lock";

/// Directory holding the namespace handle (a bind mount of an nsfs file); a private tmpfs.
pub(crate) const HANDLE_DIR: &str = "/run/nixos-wsl/ns";

/// Bind mount of the systemd namespace's PID namespace: the handle that names it.
pub(crate) const PID_HANDLE: &str = "/run/nixos-wsl/ns/pid";

/// systemd's PID as seen from outside: a lookup hint only, always verified against
/// [`PID_HANDLE`] (so PID reuse cannot fool it); a scan of `/proc` replaces it when it is wrong.
pub(crate) const INIT_PID_HINT: &str = "/run/nixos-wsl/ns/init-pid";

/// nixos-wsl-init's own log of this boot (the activation's output is in `activation.log`
/// beside it).
pub(crate) const INIT_LOG: &str = "/run/nixos-wsl/init.log";

/// Written just before PID 1 falls back to the minimal init (`init::reaper`): this boot has no
/// systemd. PID 1 is also called `pid1::COMM` while the activation runs, so only this file tells
/// "systemd could not be started" from "systemd is about to be started".
pub(crate) const NO_SYSTEMD_MARKER: &str = "/run/nixos-wsl/no-systemd";

/// Written once systemd reported ready (or the wait gave up): `<state> <pid-ns inode>`.
pub(crate) const READY_FILE: &str = "/run/nixos-wsl/ready";

/// The unix datagram socket systemd sends `READY=1` to (`$NOTIFY_SOCKET`).
pub(crate) const NOTIFY_SOCKET: &str = "/run/nixos-wsl/notify";

/// systemd's own stdout/stderr of this boot.
pub(crate) const SYSTEMD_LOG: &str = "/run/nixos-wsl/systemd.log";

/// Output of the NixOS activation of this boot.
pub(crate) const ACTIVATION_LOG: &str = "/run/nixos-wsl/activation.log";

/// Present once the activation of this boot has run (whatever its outcome).
pub(crate) const ACTIVATED_FILE: &str = "/run/nixos-wsl/activated";

/// What NixOS' activation creates; its absence means this boot has not been activated.
pub(crate) const CURRENT_SYSTEM: &str = "/run/current-system";

/// NixOS' generated environment (`export NAME="value"` lines and arbitrary shell code).
pub(crate) const SET_ENVIRONMENT: &str = "/etc/set-environment";
