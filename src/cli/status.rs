//! `nixos-wsl status [--json]`: what runs, since when, in what state. Read-only: it never
//! starts systemd, never takes the state lock, never changes a file.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::unistd::Uid;

use super::render;
use super::{Place, UsageError};
use crate::config::Config;
use crate::namespace;
use crate::namespace::proc;
use crate::paths::{ACTIVATED_FILE, ACTIVATION_LOG, CONFIG_FILE, CURRENT_SYSTEM, SYSTEMD_LOG};

pub(crate) const USAGE: &str = "\
usage: nixos-wsl status [--json]

Shows how systemd runs in this distribution: the mode (namespace: started by the login
shell; wsl-systemd: WSL's own [boot] systemd=true; none), systemd's PID inside and outside
its namespace, how long ago it started, `systemctl is-system-running`, the number of failed
units, whether the NixOS activation ran this boot, and where the logs are. Never starts
anything.

  --json   one JSON object on stdout, for scripts

Exit status: 0 systemd is up (running or degraded), 3 it is not, 4 cannot tell (run as root).
";

/// How long `systemctl` may take to answer before `status` gives up on it.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) json: bool,
}

pub(crate) fn parse(args: &[OsString]) -> Result<Option<Args>, UsageError> {
    Ok(super::json_flag(args)?.map(|json| Args { json }))
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("status", USAGE, args, parse, run)
}

pub(crate) use super::report::{Mode, Status, Systemd};

fn run(args: Args) -> i32 {
    let (status, known) = inspect();
    if args.json {
        println!("{}", render::status_json(&status));
    } else {
        print!("{}", render::status_text(&status));
    }
    status.exit_code(known)
}

fn inspect() -> (Status, bool) {
    inspect_with(SYSTEMCTL_TIMEOUT)
}

/// Looks at everything, giving each systemctl call `timeout`; the boolean is false when the
/// mode could not be determined. From outside the namespace this joins it (as root), so
/// later commands of this process run there too.
pub(crate) fn inspect_with(timeout: Duration) -> (Status, bool) {
    let exists = |p: &str| std::fs::symlink_metadata(p).is_ok();
    let mut status = Status {
        mode: Mode::None,
        inside: false,
        systemd: None,
        note: None,
        current_system: exists(CURRENT_SYSTEM),
        activated: exists(ACTIVATED_FILE),
        logs: vec![
            ("systemd", SYSTEMD_LOG.into(), exists(SYSTEMD_LOG)),
            ("activation", ACTIVATION_LOG.into(), exists(ACTIVATION_LOG)),
        ],
        generation: (
            crate::generation::booted().map(|(n, _)| n),
            crate::generation::current(Path::new(crate::generation::PROFILES)),
        ),
    };
    if exists(crate::paths::INIT_LOG) {
        status
            .logs
            .push(("init", crate::paths::INIT_LOG.into(), true));
    }
    let systemctl = crate::systemd::systemctl_for(&Config::load(Path::new(CONFIG_FILE)).systemd);
    match super::place() {
        place @ (Place::InsideOurs | Place::WslSystemd) => {
            status.mode = if place == Place::InsideOurs {
                Mode::Namespace
            } else {
                Mode::WslSystemd
            };
            status.inside = true;
            let own_ino = std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok();
            status.systemd = Some(describe(systemctl.as_deref(), None, own_ino, timeout));
            (status, true)
        }
        Place::Outside => match outside(&mut status, systemctl.as_deref(), timeout) {
            Ok(()) => (status, true),
            Err(e) => {
                let hint = if Uid::effective().is_root() {
                    String::new()
                } else {
                    " (run it as root: `wsl -u root -e nixos-wsl status`)".into()
                };
                status.note = Some(format!("cannot inspect the namespace: {e:#}{hint}"));
                (status, false)
            }
        },
    }
}

/// From outside: find the namespace through its handle and join it (the login shell's own
/// code, which also finds systemd's PID outside), then ask systemd.
fn outside(status: &mut Status, systemctl: Option<&Path>, timeout: Duration) -> Result<()> {
    if !super::state_dir_is_real() {
        return Ok(());
    }
    let Some(handle) = namespace::open_handle()? else {
        return Ok(());
    };
    // Status never waits: a namespace that is shutting down counts as gone.
    let Some(joined) = namespace::join_if_alive(&handle).context("joining the namespace")? else {
        status.note = Some(
            "the systemd namespace of this boot is dead or shutting down; the next launch starts a new one".into(),
        );
        return Ok(());
    };
    status.mode = Mode::Namespace;
    status.systemd = Some(describe(
        systemctl,
        Some(joined.init_pid),
        Some(joined.pid_ino),
        timeout,
    ));
    Ok(())
}

/// Asks about systemd: must run where `/proc` is its namespace's and children start in its
/// PID namespace (after joining, or from inside).
fn describe(
    systemctl: Option<&Path>,
    pid_outside: Option<i32>,
    pid_ino: Option<u64>,
    timeout: Duration,
) -> Systemd {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100);
    let started = std::fs::read_to_string("/proc/1/stat")
        .ok()
        .and_then(|s| proc::start_ticks(&s));
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| proc::uptime_secs(&s));
    let ask = |args: &[&str]| -> Option<String> {
        let (_, out) = super::run_bounded(systemctl?, args, timeout).ok()?;
        let out = out.trim();
        (!out.is_empty()).then(|| out.to_owned())
    };
    let readiness =
        pid_ino.and_then(|ino| crate::namespace::readiness(ino).word().map(str::to_owned));
    Systemd {
        pid_inside: Some(1),
        pid_outside,
        started_secs_ago: match (uptime, started) {
            (Some(u), Some(s)) => proc::started_ago(u, s, ticks),
            _ => None,
        },
        state: ask(&["is-system-running"]),
        failed_units: ask(&["show", "--property=NFailedUnits", "--value"])
            .and_then(|n| n.parse().ok()),
        readiness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::report::{EXIT_NOT_RUNNING, EXIT_UNKNOWN};
    use crate::testing::os;

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Some(Args { json: false })));
        assert_eq!(parse(&os(&["--json"])), Ok(Some(Args { json: true })));
        assert_eq!(parse(&os(&["--json", "--help"])), Ok(None));
        assert!(parse(&os(&["-j"])).is_err());
        assert!(parse(&os(&["json"])).is_err());
    }

    #[test]
    fn exit_codes() {
        let mut s = Status {
            mode: Mode::Namespace,
            inside: false,
            systemd: Some(Systemd {
                state: Some("degraded".into()),
                ..Systemd::default()
            }),
            note: None,
            current_system: true,
            activated: true,
            logs: Vec::new(),
            generation: (None, None),
        };
        assert_eq!(s.exit_code(true), 0);
        s.systemd.as_mut().unwrap().state = Some("starting".into());
        assert_eq!(s.exit_code(true), EXIT_NOT_RUNNING);
        s.systemd = None;
        assert_eq!(s.exit_code(true), EXIT_NOT_RUNNING);
        assert_eq!(s.exit_code(false), EXIT_UNKNOWN);
    }
}
