//! The systemd namespace: its on-disk handles, the lock around the "running / start / wait"
//! decision, the liveness probe, and joining it. One file per concept:
//!
//! | module | concept |
//! |---|---|
//! | [`statedir`] | `/run/nixos-wsl` itself, made or taken back |
//! | [`lock`] | the start decision's `flock` |
//! | [`handle`] | the nsfs bind mount that names the namespace, and the PID hint |
//! | [`proc`] | `/proc`: the namespace's live PID 1, joining it, are we inside systemd |
//! | [`readiness`] | the record of systemd's finished boot, for the shell and the CLI alike |
//!
//! Identity is kept as an nsfs bind mount (`/run/nixos-wsl/ns/pid`), never as a PID text
//! file: a bind-mounted namespace file names exactly one namespace for as long as it exists
//! and cannot be confused by PID reuse (NixOS-WSL #67, #87). systemd's outer PID is cached
//! next to it only as a hint, checked against the handle on every use.

pub(crate) mod handle;
pub(crate) mod lock;
pub(crate) mod proc;
pub(crate) mod readiness;
pub(crate) mod statedir;

pub(crate) use handle::{bind_handle, clear_handle, open_handle, prepare_handle_dir};
pub(crate) use lock::StateLock;
pub(crate) use proc::{find_init, inside_systemd, join_if_alive, remember_init};
pub(crate) use readiness::{readiness, record_readiness, Readiness};
pub(crate) use statedir::prepare_state_dir;
