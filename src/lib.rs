//! nixos-wsl: NixOS as a WSL distribution.
//!
//! The crate builds four static programs: `nixos-wsl-shell` (root's login shell, which
//! starts systemd in a PID + mount namespace and enters it), `nixos-wsl-installer` (the
//! installer tarball's first-boot program), `nixos-wsl` (the admin CLI and tarball tool) and
//! `nixos-wsl-init` (`/sbin/init` when WSL starts systemd itself, see [`init`]).
//! Every stage of the login shell's lifecycle has its own module; `shell` strings them together.

#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod activation;
pub mod cli;
pub mod config;
pub mod environment;
pub(crate) mod generation;
pub mod init;
pub mod installer;
pub(crate) mod launch;
pub mod logging;
pub(crate) mod namespace;
pub(crate) mod paths;
pub(crate) mod pid1;
pub(crate) mod session;
pub mod shell;
pub(crate) mod supervise;
pub(crate) mod sys;
pub(crate) mod systemd;
pub mod tar;
pub mod tarball;
pub(crate) mod welcome;
pub(crate) mod wslconf;

/// Helpers for the unit tests of every module.
#[cfg(test)]
pub(crate) mod testing {
    use std::ffi::OsString;

    /// An argv from string literals.
    pub(crate) fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }
}
