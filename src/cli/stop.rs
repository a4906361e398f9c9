//! `nixos-wsl stop`: shuts the namespace's systemd down cleanly (poweroff, a bounded wait,
//! then SIGKILL) and forgets the namespace, so the next launch boots a fresh one.
//!
//! Under the state lock, so no launch joins a systemd that is going away: launches arriving
//! meanwhile wait for the lock and then start the new one.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::unistd::{Pid, Uid};

use super::{Place, UsageError};
use crate::namespace::{self, StateLock};
use crate::sys::deadline::Deadline;

pub(crate) const USAGE: &str = "\
usage: nixos-wsl stop [--timeout SECONDS]

Powers off the systemd that the login shell started in its namespace, waits for it to exit
(at most SECONDS, default 30), kills it if it did not, and forgets the namespace: the next
launch boots a fresh one. Must run as root from outside the namespace, e.g. from Windows:
  wsl -d NixOS -u root -e nixos-wsl stop
Under WSL's own systemd ([boot] systemd=true) use `wsl -t <distro>` instead.

Exit status: 0 stopped (or nothing was running), 1 refused or failed.
";

/// systemd's \"power off\" signal, SIGRTMIN+4 (systemd(1)). Spelled as a number: systemd is
/// built against glibc, whose SIGRTMIN is 34, while this program may be built against musl,
/// whose SIGRTMIN is 35 (there `SIGRTMIN()+4` would be systemd's SIGRTMIN+5, reboot).
pub(crate) const POWEROFF_SIGNAL: i32 = 34 + 4;

/// How long to wait for the SIGKILLed systemd (the kernel tears the namespace down).
const KILL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) timeout: Duration,
}

pub(crate) fn parse(args: &[OsString]) -> Result<Option<Args>, UsageError> {
    let mut timeout = Duration::from_secs(30);
    let mut p = super::parser(args);
    while let Some(a) = p.next()? {
        match a {
            a if super::is_help(&a) => return Ok(None),
            lexopt::Arg::Long("timeout") => {
                let value = p
                    .value()
                    .map_err(|_| UsageError("--timeout needs a number of seconds".into()))?;
                let secs = value
                    .to_str()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or_else(|| {
                        UsageError("--timeout takes whole seconds from 1 to 3600".into())
                    })?;
                timeout = Duration::from_secs(secs);
            }
            a => return Err(a.unexpected().into()),
        }
    }
    Ok(Some(Args { timeout }))
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("stop", USAGE, args, parse, run)
}

fn run(args: Args) -> i32 {
    let distro = super::distro_name();
    match super::place() {
        Place::Outside => {}
        Place::WslSystemd => {
            eprintln!(
                "nixos-wsl stop: systemd here is WSL's own ([boot] systemd=true), not one this \
                 program started; stop the whole distribution from Windows: wsl -t {distro}"
            );
            return 1;
        }
        Place::InsideOurs => {
            eprintln!(
                "nixos-wsl stop: this runs inside the systemd namespace; run it from outside: \
                 wsl -d {distro} -u root -e nixos-wsl stop (or `sudo systemctl poweroff` here, \
                 which ends this session too)"
            );
            return 1;
        }
    }
    if !Uid::effective().is_root() {
        eprintln!(
            "nixos-wsl stop: needs root; from Windows: wsl -d {distro} -u root -e nixos-wsl stop"
        );
        return 1;
    }
    match stop(args.timeout) {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(e) => {
            eprintln!("nixos-wsl stop: {e:#}");
            1
        }
    }
}

/// Does the work; returns what to tell the user.
fn stop(timeout: Duration) -> Result<String> {
    if !super::state_dir_is_real() {
        return Ok("systemd is not running".into());
    }
    let _lock = StateLock::acquire(Instant::now() + Duration::from_secs(60))?;
    let Some(handle) = namespace::open_handle()? else {
        return Ok("systemd is not running".into());
    };
    let Some(pid) = namespace::find_init(handle.pid_ino) else {
        drop(handle);
        namespace::clear_handle()?;
        return Ok("systemd was not running (removed the handle of a dead namespace)".into());
    };
    let pidfd = crate::sys::pidfd::open(Pid::from_raw(pid))?;
    // The pidfd pins this process; make sure it is still the namespace's init (not a
    // reused PID) before signalling it.
    let still = std::fs::metadata(format!("/proc/{pid}/ns/pid")).map(|m| m.ino());
    anyhow::ensure!(
        still.ok() == Some(handle.pid_ino),
        "systemd (pid {pid}) exited while stopping it"
    );
    drop(handle);
    let started = Instant::now();
    crate::sys::pidfd::signal(&pidfd, POWEROFF_SIGNAL)
        .with_context(|| format!("asking systemd (pid {pid}) to power off"))?;
    let message = if crate::sys::pidfd::wait_exit(&pidfd, Deadline::after(timeout)) {
        format!(
            "systemd (pid {pid}) powered off in {:.1} s",
            started.elapsed().as_secs_f64()
        )
    } else {
        eprintln!(
            "nixos-wsl stop: systemd (pid {pid}) did not power off within {} s; killing it",
            timeout.as_secs()
        );
        crate::sys::pidfd::signal(&pidfd, libc::SIGKILL)
            .with_context(|| format!("killing systemd (pid {pid})"))?;
        if !crate::sys::pidfd::wait_exit(&pidfd, Deadline::after(KILL_WAIT)) {
            anyhow::bail!(
                "systemd (pid {pid}) survived SIGKILL for {} s",
                KILL_WAIT.as_secs()
            );
        }
        format!("systemd (pid {pid}) killed after {} s", timeout.as_secs())
    };
    namespace::clear_handle()?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;

    #[test]
    fn arguments() {
        let secs = |s| {
            Ok(Some(Args {
                timeout: Duration::from_secs(s),
            }))
        };
        assert_eq!(parse(&[]), secs(30));
        assert_eq!(parse(&os(&["--timeout", "5"])), secs(5));
        assert_eq!(parse(&os(&["--timeout=7"])), secs(7));
        assert_eq!(parse(&os(&["--help"])), Ok(None));
        for bad in [
            &["--timeout"][..],
            &["--timeout", "0"][..],
            &["--timeout", "x"][..],
            &["--timeout=-1"][..],
            &["now"][..],
        ] {
            assert!(parse(&os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn poweroff_is_systemds_sigrtmin_plus_4() {
        // glibc's SIGRTMIN (what systemd uses) is 34; musl's is 35, so never SIGRTMIN() here.
        assert_eq!(POWEROFF_SIGNAL, 38);
    }
}
