//! The builds under test and the two ways systemd runs, for the suites that boot distros of
//! both kinds. Integration tests only: cargo names its builds (`CARGO_BIN_EXE_*`) there.

use std::path::PathBuf;

use super::{DistroOptions, RootShell, WslSystemd};

/// Which way systemd runs: started by root's login shell in a namespace, or by WSL itself
/// with nixos-wsl-init as `/sbin/init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Namespace,
    Native,
}

/// The program at `$var` if set (another build: release, cross, an older one), else cargo's.
pub fn build(var: &str, cargo_built: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(cargo_built),
    }
}

/// nixos-wsl-shell under test (`NIXOS_WSL_TEST_SHELL_BIN` overrides).
pub fn shell() -> PathBuf {
    build(
        "NIXOS_WSL_TEST_SHELL_BIN",
        env!("CARGO_BIN_EXE_nixos-wsl-shell"),
    )
}

/// nixos-wsl-init under test (`NIXOS_WSL_TEST_INIT_BIN` overrides).
pub fn init() -> PathBuf {
    build(
        "NIXOS_WSL_TEST_INIT_BIN",
        env!("CARGO_BIN_EXE_nixos-wsl-init"),
    )
}

/// The admin CLI under test (`NIXOS_WSL_TEST_CLI_BIN` overrides).
pub fn cli() -> PathBuf {
    build("NIXOS_WSL_TEST_CLI_BIN", env!("CARGO_BIN_EXE_nixos-wsl"))
}

/// A distro whose root shell is nixos-wsl-shell under test, booting in `mode`.
pub fn distro(name: &str, mode: Mode) -> DistroOptions {
    let opts = DistroOptions::new(name, RootShell::NixosWslShell(shell()));
    match mode {
        Mode::Namespace => opts,
        Mode::Native => opts.wsl_systemd(WslSystemd::new(init())),
    }
}

/// [`distro`] as a NixOS system: generations 1 and 2 (current) and the admin CLI under test
/// at /bin/nixos-wsl ([`super::nixos::system`]).
pub fn nixos_distro(name: &str, mode: Mode) -> anyhow::Result<DistroOptions> {
    use anyhow::Context;
    let path = cli();
    let cli = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(super::nixos::system(distro(name, mode), &cli))
}
