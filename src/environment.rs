//! The session environment: NixOS' `/etc/set-environment`, loaded once, and the PATH policy.
//!
//! WSL runs commands as `<shell> -c <string>`, which no shell treats as a login shell, so
//! nothing would read `/etc/set-environment` and `wsl -- git status` would not find `git`
//! (NixOS-WSL #32, #57, #399, #452). We load it ourselves before exec'ing the user's shell:
//! - [`script`] evaluates the subset of sh that NixOS generates, in microseconds;
//! - [`sh`] sources anything else with a real shell, bounded in time;
//! - [`path`] orders PATH (NixOS first, Windows last or dropped) and reads the automount root.
//!
//! Everything here decides and returns data; nothing touches our own process environment.

pub(crate) mod path;
pub mod script;
pub(crate) mod sh;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

pub(crate) use path::{apply_session_path, automount_root};
pub(crate) use sh::Credentials;

/// NixOS' marker that `/etc/set-environment` has been applied; nested shells skip the file.
pub(crate) const DONE_MARKER: &str = "__NIXOS_SET_ENVIRONMENT_DONE";

/// The shell that sources the file when [`script`] cannot evaluate it.
pub(crate) const FALLBACK_SHELL: &str = "/bin/sh";

/// Bound on the fallback shell: set-environment only assigns variables, so seconds mean a hang.
pub(crate) const FALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// An ordered set of exported variables, byte-exact (names and values need not be UTF-8).
///
/// Setting an existing name keeps its position; new names go to the end, so the order a
/// child sees is stable and close to the order WSL gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Env {
        Env::default()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: impl AsRef<OsStr>) -> Option<&OsStr> {
        let name = name.as_ref();
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// Sets `name` to `value`, in place if it exists, else at the end.
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        let (name, value) = (name.into(), value.into());
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name, value)),
        }
    }

    /// Removes `name`, returning its value.
    pub(crate) fn remove(&mut self, name: impl AsRef<OsStr>) -> Option<OsString> {
        let name = name.as_ref();
        let index = self.vars.iter().position(|(n, _)| n == name)?;
        Some(self.vars.remove(index).1)
    }

    /// The variables in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.as_os_str(), v.as_os_str()))
    }

    /// The variables in order, for `Command::envs` or `execve`.
    pub(crate) fn into_vec(self) -> Vec<(OsString, OsString)> {
        self.vars
    }
}

/// Later duplicates overwrite earlier ones in place, as a shell importing `environ` does.
impl FromIterator<(OsString, OsString)> for Env {
    fn from_iter<I: IntoIterator<Item = (OsString, OsString)>>(iter: I) -> Env {
        let mut env = Env::new();
        for (name, value) in iter {
            env.set(name, value);
        }
        env
    }
}

/// Applies NixOS' `/etc/set-environment` at `path` to `env`, once.
///
/// - `env` already carries a non-empty [`DONE_MARKER`] (a nested launch): `env` unchanged.
/// - else the file is evaluated by [`script::evaluate`], or, if it uses anything beyond that
///   subset, sourced by `shell` (normally [`FALLBACK_SHELL`]) within [`FALLBACK_TIMEOUT`],
///   as `user` (the session's user, when we are root and about to become them); the result
///   carries `DONE_MARKER=1`.
///
/// `Err` holds a one-line reason (missing or unreadable file, syntax error, timeout); the
/// caller keeps `env` and prints it as a warning, so a broken file never locks anyone out. A
/// missing file is an error too: NixOS always generates it, and a NixOS session without it
/// finds almost no programs, which a user should hear about.
pub(crate) fn load_set_environment_as(
    path: &Path,
    env: &Env,
    shell: &Path,
    user: Option<&Credentials>,
) -> anyhow::Result<Env> {
    if env.get(DONE_MARKER).is_some_and(|v| !v.is_empty()) {
        return Ok(env.clone());
    }
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{} does not exist (the NixOS activation creates it: `sudo {}`)",
            path.display(),
            crate::config::DEFAULT_ACTIVATE
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut loaded = match script::evaluate(&text, env) {
        Ok(loaded) => loaded,
        Err(unsupported) => {
            log::debug!(
                "{}: {unsupported}; sourcing it with {}",
                path.display(),
                shell.display()
            );
            sh::source(shell, path, env, FALLBACK_TIMEOUT, user)
                .with_context(|| format!("loading {}", path.display()))?
        }
    };
    loaded.set(DONE_MARKER, "1");
    Ok(loaded)
}

#[cfg(test)]
mod tests;
