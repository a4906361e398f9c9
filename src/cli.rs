//! `nixos-wsl` admin subcommands for operating the systemd namespace: `status`, `exec`,
//! `stop`, `logs`. When something goes wrong inside a WSL distribution there is no console
//! and no rescue disk; these are the tools to look inside and to reset it.
//!
//! Each subcommand is a module with a pure argument parser (unit-tested) and a `main(args)`
//! that returns the exit status:
//!
//! | command  | exit status |
//! |----------|-------------|
//! | `status` | 0 systemd is up (`running` or `degraded`), 3 it is not (absent, dead, still booting, failing), 4 cannot tell (not root outside the namespace) |
//! | `exec`   | the command's own status; 125 `nixos-wsl` itself failed (not root, no such user, systemd unreachable); 127 the command could not be run |
//! | `stop`   | 0 stopped (or was not running), 1 refused or failed |
//! | `logs`   | 0, or 1 when a log exists but cannot be read |
//!
//! Every subcommand: `--help` prints its usage on stdout (exit 0); an unknown argument prints
//! it on stderr (exit 2).
//!
//! Where the command runs matters ([`Place`]): outside the namespace (`wsl -u root -e
//! nixos-wsl ...`), inside our namespace (`sudo nixos-wsl ...` in a session), or under WSL's
//! own systemd (`[boot] systemd=true`), where there is no namespace of ours at all.

pub mod doctor;
pub mod exec;
pub mod generations;
pub mod logs;
pub(crate) mod render;
pub(crate) mod report;
pub mod status;
pub mod stop;
pub mod version;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::paths::{NOTIFY_SOCKET, STATE_DIR};
use crate::session::distro_name;
use crate::sys::deadline::Deadline;

/// A command-line mistake: printed with the usage on stderr, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Exit status for command-line mistakes.
pub(crate) const EXIT_USAGE: i32 = 2;

/// Runs a subcommand: parses `args` (`Ok(None)` = `--help`), prints usage as asked, runs.
fn dispatch<A>(
    name: &str,
    usage: &str,
    args: &[OsString],
    parse: fn(&[OsString]) -> Result<Option<A>, UsageError>,
    run: fn(A) -> i32,
) -> i32 {
    match parse(args) {
        Ok(Some(parsed)) => run(parsed),
        Ok(None) => {
            print!("{usage}");
            0
        }
        Err(UsageError(why)) => {
            eprint!("nixos-wsl {name}: {why}\n{usage}");
            EXIT_USAGE
        }
    }
}

/// The admin CLI's one argument parser: `lexopt` over the subcommand's arguments
/// (`--name value`, `--name=value`, `-n value`, `--` ending the options), its errors turned
/// into [`UsageError`]s. Every subcommand takes `-h`/`--help` ([`is_help`]).
pub(crate) fn parser(args: &[OsString]) -> lexopt::Parser {
    lexopt::Parser::from_args(args.iter().cloned())
}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> UsageError {
        UsageError(match e {
            lexopt::Error::MissingValue {
                option: Some(option),
            } => format!("{option} needs a value"),
            lexopt::Error::UnexpectedOption(option) => format!("unknown option {option}"),
            lexopt::Error::UnexpectedArgument(arg) => format!("unexpected argument {arg:?}"),
            other => other.to_string(),
        })
    }
}

/// True for `-h`/`--help`.
pub(crate) fn is_help(arg: &lexopt::Arg) -> bool {
    matches!(arg, lexopt::Arg::Short('h') | lexopt::Arg::Long("help"))
}

/// Rejects any argument (for subcommands that take none but `--help`).
fn no_arguments(args: &[OsString]) -> Result<Option<()>, UsageError> {
    let mut p = parser(args);
    match p.next()? {
        None => Ok(Some(())),
        Some(a) if is_help(&a) => Ok(None),
        Some(a) => Err(a.unexpected().into()),
    }
}

/// `[--json]` (for the reports): `Some(json)`, or `None` for `--help`.
fn json_flag(args: &[OsString]) -> Result<Option<bool>, UsageError> {
    let mut p = parser(args);
    let mut json = false;
    while let Some(a) = p.next()? {
        match a {
            lexopt::Arg::Long("json") => json = true,
            a if is_help(&a) => return Ok(None),
            a => return Err(a.unexpected().into()),
        }
    }
    Ok(Some(json))
}

/// Where this command runs, relative to the systemd namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// PID 1 of our PID namespace is not systemd: WSL's own init (`wsl -u root -e ...`).
    Outside,
    /// Inside the namespace the login shell started (`sudo nixos-wsl ...` in a session).
    InsideOurs,
    /// PID 1 is systemd, but not one we started: WSL's own systemd mode.
    WslSystemd,
}

/// Finds out where we are. PID 1 being systemd alone cannot tell our namespace from WSL's
/// systemd mode; our systemd is the one the readiness record names (readable by anyone), or
/// (for root) the one whose environment holds our `$NOTIFY_SOCKET`.
pub(crate) fn place() -> Place {
    if !crate::namespace::inside_systemd() {
        return Place::Outside;
    }
    let own = std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok();
    let recorded = crate::namespace::readiness::recorded_namespace();
    if own.is_some() && own == recorded {
        return Place::InsideOurs;
    }
    let environ = std::fs::read("/proc/1/environ").unwrap_or_default();
    if crate::namespace::proc::environ_has(&environ, "NOTIFY_SOCKET", NOTIFY_SOCKET.as_bytes()) {
        return Place::InsideOurs;
    }
    Place::WslSystemd
}

/// True when `/run/nixos-wsl` is a real directory (not a symlink): the CLI never follows a
/// planted symlink into another directory, and never creates the state directory itself.
fn state_dir_is_real() -> bool {
    std::fs::symlink_metadata(STATE_DIR).is_ok_and(|m| m.file_type().is_dir())
}

/// Runs `program args...` with a clean environment and no stdin, returning its exit code
/// and stdout; killed after `timeout` (a hung systemd must not hang `status`).
fn run_bounded(program: &Path, args: &[&str], timeout: Duration) -> Result<(i32, String)> {
    let done = crate::sys::child::run_bounded(
        Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/run/current-system/sw/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("SYSTEMD_PAGER", ""),
        Deadline::after(timeout),
    )
    .with_context(|| format!("running {}", program.display()))?;
    if done.timed_out {
        bail!(
            "{} {} did not answer within {} s",
            program.display(),
            args.join(" "),
            timeout.as_secs()
        );
    }
    Ok((done.code.unwrap_or(1), done.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;
    use std::time::Instant;

    #[test]
    fn no_arguments_accepts_only_help() {
        assert_eq!(no_arguments(&[]), Ok(Some(())));
        assert_eq!(no_arguments(&os(&["--help"])), Ok(None));
        assert_eq!(no_arguments(&os(&["-h"])), Ok(None));
        assert!(no_arguments(&os(&["--bogus"])).is_err());
    }

    #[test]
    fn run_bounded_collects_and_times_out() {
        let (code, out) = run_bounded(
            Path::new("/bin/sh"),
            &["-c", "echo hi; exit 3"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((code, out.as_str()), (3, "hi\n"));
        let started = Instant::now();
        let err = run_bounded(
            Path::new("/bin/sh"),
            &["-c", "exec sleep 30"],
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(format!("{err}").contains("did not answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
