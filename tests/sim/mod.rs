//! A simulator of WSL2's Linux side, for root-run end-to-end tests of the login shell
//! (wsl-behaviour.md section 5). Shared by tests/e2e/, examples/wsl-sim.rs and benches/launch.rs.
//!
//! One executable plays every part; `NIXOS_WSL_SIM_ROLE` selects which, and [`role_main`]
//! must be the first thing `main` calls (before any thread exists: the roles fork).
//! - the harness (a test or the CLI): builds the rootfs ([`rootfs`]), prepares distro
//!   instances and drives them ([`Distro`], [`Launch`]);
//! - `init` ([`init`]): boots a distro (namespaces, mounts, pivot_root, PID 1 that reaps)
//!   and terminates it when the harness lets go;
//! - `launch` ([`launcher`]; harness side in [`launch`]): one `wsl.exe` invocation: joins the distro's namespaces, does
//!   WSL's session setup (user, credentials, cwd, environment, pty or pipes, fresh signal
//!   state, only fds 0-2), execs, relays the pty and reports the exit status like wsl.exe.
//!
//! Lifecycle: `Distro::start(opts)` = create an instance (overlayfs upper dir over the cached
//! rootfs) and boot it; `distro.run(&Launch::command("..."))` / `distro.spawn(...)`;
//! `distro.terminate()` (= `wsl -t`), `distro.boot()` again (fresh `/run`, same disk);
//! dropping the `Distro` terminates it and deletes its state. `import::import(opts, tarball)`
//! creates an instance from a tarball instead, as `wsl --import` does ([`import`]).
//! `DistroOptions::wsl_systemd` boots it in WSL's own systemd mode instead: `/sbin/init` as
//! PID 1, WSL's readiness poll and `login -f` sessions ([`native`]).

pub mod cgroup;
#[cfg(test)]
pub mod checks;
pub mod distro;
pub mod harness;
pub mod import;
pub mod init;
pub mod launch;
pub mod launcher;
pub mod native;
pub mod nixos;
pub mod rootfs;
pub mod safety;
pub mod session;
pub mod sys;
#[cfg(test)]
pub mod under_test;
pub mod userdb;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{anyhow, Result};

pub use distro::{Distro, DistroOptions, RootShell};
#[allow(unused_imports)] // for examples/wsl-sim.rs; no test passes a terminal through
pub use launch::Stdio;
pub use launch::{Exit, Launch, Output, Process};
pub use native::WslSystemd;

/// Selects the role of a re-executed simulator process.
pub const ROLE_VAR: &str = "NIXOS_WSL_SIM_ROLE";

/// Runs the role this process was started for, if any, and returns its exit code. Call it
/// first thing in `main`: `if let Some(code) = sim::role_main() { std::process::exit(code) }`.
pub fn role_main() -> Option<i32> {
    let role = std::env::var_os(ROLE_VAR)?;
    let args = RoleArgs::parse(std::env::args_os().skip(1));
    Some(match role.as_bytes() {
        b"init" => init::main(&args),
        b"launch" => launcher::main(&args),
        other => {
            eprintln!("wsl-sim: unknown role {:?}", String::from_utf8_lossy(other));
            127
        }
    })
}

/// `--key value` pairs on a role's command line (values may repeat and hold any bytes but
/// NUL).
#[derive(Clone, Debug, Default)]
pub struct RoleArgs(Vec<(String, OsString)>);

impl RoleArgs {
    pub fn push(&mut self, key: &str, value: impl AsRef<OsStr>) {
        self.0
            .push((key.to_string(), value.as_ref().to_os_string()));
    }

    pub fn into_vec(self) -> Vec<OsString> {
        self.0
            .into_iter()
            .flat_map(|(k, v)| [OsString::from(format!("--{k}")), v])
            .collect()
    }

    pub fn parse(mut it: impl Iterator<Item = OsString>) -> RoleArgs {
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = k.to_string_lossy();
            out.push((k.trim_start_matches("--").to_string(), v));
        }
        RoleArgs(out)
    }

    pub fn opt(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.opt(key).ok_or_else(|| anyhow!("missing --{key}"))
    }

    pub fn path(&self, key: &str) -> Result<PathBuf> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| PathBuf::from(v))
            .ok_or_else(|| anyhow!("missing --{key}"))
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
            .collect()
    }
}
