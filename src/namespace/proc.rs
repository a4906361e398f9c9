//! Processes, as `/proc` shows them: finding the namespace's live PID 1 from outside (the hint,
//! else one scan), joining it with `setns(2)`, telling whether we already run under systemd,
//! and the pure parsers of `/proc/<pid>/{stat,status,environ}` and `/proc/uptime`.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

use super::handle::Handle;
use crate::sys::deadline::Deadline;
use crate::sys::pidfd;

/// The systemd namespace, joined: our mount namespace is systemd's, our next child is in its
/// PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Joined {
    /// Inode of its PID namespace: the identity readiness records refer to.
    pub(crate) pid_ino: u64,
    /// systemd's PID outside the namespace.
    pub(crate) init_pid: i32,
    /// The hint file named it (no scan of `/proc` was needed).
    pub(crate) hinted: bool,
}

/// A live PID 1 of a namespace, found from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Init {
    /// Its PID in our PID namespace.
    pub(crate) pid: i32,
    /// The hint named it (else a scan of `/proc` found it: the hint is missing or wrong, and
    /// [`remember_init`] repairs it).
    pub(crate) hinted: bool,
    /// It is systemd-shutdown: systemd's PID 1 execs it for poweroff, reboot and halt. It kills
    /// every process of the namespace before it exits, so a session started there would be
    /// killed.
    pub(crate) shutting_down: bool,
}

/// The live PID 1 of the PID namespace `pid_ino` (the hint first, else one scan of `/proc`),
/// with what the same read of its `/proc/<pid>/status` tells. Reads only: `nixos-wsl status`
/// uses it too, and never changes a file.
pub(crate) fn locate_init(pid_ino: u64) -> Option<Init> {
    let hint = super::handle::read_hint();
    let found = |pid: i32, hinted: bool| {
        live_init_status(pid, pid_ino).map(|status| Init {
            pid,
            hinted,
            // `Name` is the comm: 15 bytes of "systemd-shutdown".
            shutting_down: status_field(&status, "Name:") == "systemd-shutdow",
        })
    };
    if let Some(init) = hint.and_then(|pid| found(pid, true)) {
        return Some(init);
    }
    // The hint is missing or wrong (damaged state): look at every process once.
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find_map(|pid| found(pid, false))
}

/// The PID of the live init of the PID namespace `pid_ino` (see [`locate_init`]).
pub(crate) fn find_init(pid_ino: u64) -> Option<i32> {
    locate_init(pid_ino).map(|found| found.pid)
}

/// Joins the namespace of `handle`, whose PID 1 is `init`: its mount namespace, and the PID
/// namespace for our children. `None` when it died just now.
pub(crate) fn join(handle: &Handle, init: &Init) -> Result<Option<Joined>> {
    let init_pid = init.pid;
    let mnt = match File::open(format!("/proc/{init_pid}/ns/mnt")) {
        Ok(f) => f,
        // It died just now.
        Err(_) => return Ok(None),
    };
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).context("joining the systemd mount namespace")?;
    setns(handle.pid_ns.as_fd(), CloneFlags::CLONE_NEWPID)
        .context("joining the systemd PID namespace")?;
    Ok(Some(Joined {
        pid_ino: handle.pid_ino,
        init_pid,
        hinted: init.hinted,
    }))
}

/// Waits (until `deadline`) for a PID 1 that is [`Init::shutting_down`] to finish, so the
/// next systemd boots alone; says so after a second.
pub(crate) fn wait_for_shutdown(init: &Init, deadline: Instant) {
    log::info!("the systemd of this boot is shutting down; waiting for it to finish");
    let wait = Deadline::at(deadline)
        .telling(|| log::warn!("waiting for the previous boot to finish shutting down"));
    pidfd::wait_pid_exit(nix::unistd::Pid::from_raw(init.pid), wait);
}

/// Joins the handle's namespace if its PID 1 is alive and not going down ([`locate_init`],
/// [`join`]); `None` when the namespace is dead or shutting down. Waits for nothing.
pub(crate) fn join_if_alive(handle: &Handle) -> Result<Option<Joined>> {
    match locate_init(handle.pid_ino) {
        Some(init) if !init.shutting_down => join(handle, &init),
        _ => Ok(None),
    }
}

/// After a launch joined: rewrites the hint when a scan had to find systemd, so the next
/// launch does not scan again. Best effort (a read-only `/run` only costs the scan).
pub(crate) fn remember_init(joined: &Joined) {
    if !joined.hinted {
        let _ = super::handle::write_hint(joined.init_pid);
    }
}

/// The `/proc/<pid>/status` of process `pid` if it lives in PID namespace `pid_ino`, is PID 1
/// there, and is not a zombie.
fn live_init_status(pid: i32, pid_ino: u64) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let in_ns = std::fs::metadata(format!("/proc/{pid}/ns/pid")).is_ok_and(|m| m.ino() == pid_ino);
    if !in_ns {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .filter(|status| status_says_live_init(status))
}

/// A field of `/proc/<pid>/status`, trimmed; empty when absent.
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .unwrap_or("")
}

/// From `/proc/<pid>/status`: the innermost `NSpid` is 1 and the state is not zombie/dead.
pub(crate) fn status_says_live_init(status: &str) -> bool {
    let innermost_is_1 = status_field(status, "NSpid:").split_whitespace().last() == Some("1");
    let state = status_field(status, "State:").chars().next();
    innermost_is_1 && !matches!(state, Some('Z' | 'X' | 'x') | None)
}

/// True when PID 1 of our PID namespace is systemd: WSL's own systemd mode, or a launch from
/// inside our namespace (`sudo -i`, `su -`, ssh running root's shell). Namespace-based, not an
/// environment marker, so it survives `sudo`'s environment reset (NixOS-WSL #51, #167).
pub(crate) fn inside_systemd() -> bool {
    let exe = std::fs::read_link("/proc/1/exe").ok();
    let named = |name: &[u8]| name == b"systemd";
    if let Some(exe) = exe {
        use std::os::unix::ffi::OsStrExt;
        return exe.file_name().is_some_and(|n| named(n.as_bytes()));
    }
    // Without ptrace access to PID 1 (not root), fall back to its command name.
    std::fs::read("/proc/1/comm").is_ok_and(|comm| named(comm.trim_ascii_end()))
}

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks after boot. Fields are counted
/// after the parenthesised command name, which may itself hold spaces and parentheses.
pub(crate) fn start_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    // `rest` starts at field 3 (state), so field 22 is the 20th word.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds since boot, the first number of `/proc/uptime`.
pub(crate) fn uptime_secs(uptime: &str) -> Option<f64> {
    uptime.split_whitespace().next()?.parse().ok()
}

/// How long ago a process started: `uptime - start_ticks / ticks_per_sec`, whole seconds.
pub(crate) fn started_ago(uptime: f64, start_ticks: u64, ticks_per_sec: u64) -> Option<u64> {
    if ticks_per_sec == 0 {
        return None;
    }
    let started = start_ticks as f64 / ticks_per_sec as f64;
    (uptime >= started).then_some((uptime - started) as u64)
}

/// True when a NUL-separated environment block (`/proc/<pid>/environ`) holds `key=value`.
pub(crate) fn environ_has(environ: &[u8], key: &str, value: &[u8]) -> bool {
    environ.split(|&b| b == 0).any(|entry| {
        entry.len() == key.len() + 1 + value.len()
            && entry.starts_with(key.as_bytes())
            && entry[key.len()] == b'='
            && &entry[key.len() + 1..] == value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_init_from_status() {
        let status = |nspid: &str, state: &str| {
            format!("Name:\tsystemd\nState:\t{state}\nNSpid:\t{nspid}\n")
        };
        assert!(status_says_live_init(&status("4242\t1", "S (sleeping)")));
        assert!(!status_says_live_init(&status("4242\t7", "S (sleeping)")));
        assert!(!status_says_live_init(&status("4242\t1", "Z (zombie)")));
        assert!(!status_says_live_init(&status("1", "")));
        assert!(!status_says_live_init("garbage"));
    }

    #[test]
    fn start_ticks_after_tricky_comm() {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        fields[19] = "123456".into(); // field 22
        let stat = format!("42 (a) (b c)) {}", fields.join(" "));
        assert_eq!(start_ticks(&stat), Some(123456));
        assert_eq!(start_ticks("42 (x) S 1 2"), None);
        assert_eq!(start_ticks("garbage"), None);
    }

    #[test]
    fn uptime_and_age() {
        assert_eq!(uptime_secs("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(uptime_secs(""), None);
        assert_eq!(started_ago(100.5, 5000, 100), Some(50));
        assert_eq!(started_ago(10.0, 5000, 100), None);
        assert_eq!(started_ago(10.0, 5, 0), None);
    }

    #[test]
    fn environ_entries() {
        let env = b"container=wsl\0NOTIFY_SOCKET=/run/nixos-wsl/notify\0";
        assert!(environ_has(env, "NOTIFY_SOCKET", b"/run/nixos-wsl/notify"));
        assert!(environ_has(env, "container", b"wsl"));
        assert!(!environ_has(env, "NOTIFY_SOCKET", b"/run/nixos-wsl"));
        assert!(!environ_has(
            env,
            "NOTIFY",
            b"_SOCKET=/run/nixos-wsl/notify"
        ));
        assert!(!environ_has(b"", "container", b"wsl"));
    }
}
