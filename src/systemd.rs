//! Starting systemd as PID 1 of a new PID + mount namespace, and waiting for it to be ready.
//!
//! The fork chain (each step exists for a reason):
//!
//! ```text
//! launcher ──fork──> creator ──unshare(PID|NS)──fork──> init (PID 1): mounts /proc, waits for "go"
//!    │  [`spawn`] returns it [`Pending`]; the caller binds /proc/<init>/ns/pid as the handle,
//!    │  then [`Pending::release`] sends "go" ──────────────────────────────> exec systemd
//!    └─ waits for READY=1 on $NOTIFY_SOCKET or for systemd's pidfd to close
//! ```
//!
//! The handle is bound *before* systemd runs, and the init waits for it: a launcher killed at
//! any point leaves either no systemd (the init sees the go pipe close and exits) or a systemd
//! that the next launch finds through the handle: never an orphan nobody knows about. The
//! creator exits at once, so systemd is re-parented to WSL's init and outlives the launch.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::poll::{PollFd, PollFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::socket::{bind, recv, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::paths::{NOTIFY_SOCKET, SYSTEMD_LOG};
use crate::sys::deadline::Deadline;

/// The environment systemd starts with: WSL's own systemd mode passes exactly the `container*`
/// variables. `container=wsl` makes systemd behave as a container init: without it,
/// `poweroff` inside remounts the shared root filesystem read-only.
const SYSTEMD_ENV: &[&str] = &["container=wsl", "container_host_id=windows"];

/// PID 1 of a new namespace, waiting for the go-ahead to exec systemd. Dropping it without
/// [`Pending::release`] closes the go pipe: the init exits and no systemd ever runs.
pub(crate) struct Pending {
    /// The init's PID in the launcher's PID namespace.
    pub(crate) pid: Pid,
    go: OwnedFd,
    notify: OwnedFd,
}

/// A systemd that was started and has not yet been seen ready.
pub(crate) struct Started {
    /// Our end of `$NOTIFY_SOCKET`.
    notify: OwnedFd,
    /// Becomes readable when systemd exits.
    pidfd: OwnedFd,
}

/// How the wait for systemd ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `READY=1` arrived: the boot finished (possibly degraded).
    Ready,
    /// systemd exited before becoming ready.
    Died,
    /// The deadline passed; systemd is still running.
    TimedOut,
}

/// Creates a new PID + mount namespace whose PID 1 will exec `systemd` once released. Must be
/// called with the state lock held; the caller names the namespace (binds its handle) before
/// releasing it, so no systemd can run that no handle names.
pub(crate) fn spawn(systemd: &Path) -> Result<Pending> {
    check_executable(systemd)?;
    let log = crate::sys::state::open_log(Path::new(SYSTEMD_LOG))?;
    let notify = notify_socket()?;
    let systemd_c = CString::new(systemd.as_os_str().as_bytes()).context("systemd path")?;
    let env: Vec<CString> = SYSTEMD_ENV
        .iter()
        .map(|v| CString::new(*v))
        .chain(std::iter::once(CString::new(format!(
            "NOTIFY_SOCKET={NOTIFY_SOCKET}"
        ))))
        .collect::<Result<_, _>>()?;
    let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;

    // SAFETY: this program is single-threaded, so the child may allocate and run Rust code.
    let creator = match unsafe { fork() }.context("forking the namespace creator")? {
        ForkResult::Child => {
            drop((go_write, report_read, notify));
            let code = creator_main(go_read, report_write, &log, &systemd_c, &env);
            // SAFETY: `_exit` skips atexit handlers and stdio flushing that belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((go_read, report_write, log));
    // The creator reports `P<pid of init>` or `E<reason>`, then exits (EOF).
    let mut report = String::new();
    let read = std::fs::File::from(report_read).read_to_string(&mut report);
    let _ = waitpid(creator, None);
    read.context("reading the namespace creator's report")?;
    let pid = match report.strip_prefix('P').map(str::parse::<i32>) {
        Some(Ok(pid)) => Pid::from_raw(pid),
        _ => bail!(
            "creating the namespaces: {}",
            report.trim_start_matches('E').trim()
        ),
    };
    Ok(Pending {
        pid,
        go: go_write,
        notify,
    })
}

impl Pending {
    /// Lets PID 1 exec systemd.
    pub(crate) fn release(self) -> Result<Started> {
        let pid = self.pid;
        let pidfd = crate::sys::pidfd::open(pid).with_context(|| {
            format!("systemd's process (pid {pid}) exited early; see {SYSTEMD_LOG}")
        })?;
        std::fs::File::from(self.go)
            .write_all(b"G")
            .context("starting systemd")?;
        Ok(Started {
            notify: self.notify,
            pidfd,
        })
    }
}

/// The creator: unshares the namespaces, forks the init and reports its PID (or why not).
/// Returns the creator's exit code.
fn creator_main(
    go: OwnedFd,
    report: OwnedFd,
    log: &std::fs::File,
    systemd: &CString,
    env: &[CString],
) -> i32 {
    let mut report = std::fs::File::from(report);
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS) {
        let _ = write!(report, "Eunshare: {e}");
        return 1;
    }
    // Receive WSL's mounts (/mnt/c, /mnt/wsl, WSLg, Docker Desktop's binds) but never send
    // ours back: slave of WSL's peer group, and shared within the new namespace so systemd's
    // services see its later mounts (systemd itself leaves propagation alone in a container).
    for flags in [MsFlags::MS_SLAVE, MsFlags::MS_SHARED] {
        let all = flags | MsFlags::MS_REC;
        if let Err(e) = mount(None::<&str>, "/", None::<&str>, all, None::<&str>) {
            let _ = write!(report, "Esetting mount propagation: {e}");
            return 1;
        }
    }
    // SAFETY: single-threaded (the creator is a fork of a single-threaded program).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(report);
            let code = init_main(go, log, systemd, env);
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = write!(report, "P{child}");
            0
        }
        Err(e) => {
            let _ = write!(report, "Eforking systemd: {e}");
            1
        }
    }
}

/// PID 1 of the new namespace, before exec'ing systemd: a fresh `/proc` for the new PID
/// namespace, `binfmt_misc` (otherwise systemd puts a broken automount there), our log as
/// `/dev/console` (a container systemd logs to the console), its own session, stdio, default
/// signals; then it waits for the launcher's go-ahead (sent once the handle is bound; EOF
/// means the launcher died: start nothing). Returns only on failure, with the exit code.
fn init_main(go: OwnedFd, log: &std::fs::File, systemd: &CString, env: &[CString]) -> i32 {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        let mut err = log;
        let _ = writeln!(err, "nixos-wsl: {what}: {e}");
        1
    };
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        proc_flags,
        None::<&str>,
    ) {
        return fail("mounting /proc", &e);
    }
    if Path::new("/proc/sys/fs/binfmt_misc").is_dir() {
        // Absent from some kernels; systemd then copes on its own.
        let _ = mount(
            Some("binfmt_misc"),
            "/proc/sys/fs/binfmt_misc",
            Some("binfmt_misc"),
            proc_flags,
            None::<&str>,
        );
    }
    if Path::new("/dev/console").exists() {
        let _ = mount(
            Some(SYSTEMD_LOG),
            "/dev/console",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    let null = match OpenOptions::new().read(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return fail("opening /dev/null", &e),
    };
    let mut go_byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut go_byte), Ok(1)) {
        return 1;
    }
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (log.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        // dup2 clears close-on-exec on the target: exactly fds 0-2 reach systemd.
        if let Err(e) = nix::unistd::dup2(from, to) {
            return fail("setting up stdio", &e);
        }
    }
    crate::sys::signals::reset_for_exec();
    let argv = [systemd.clone()];
    let e = match nix::unistd::execve(systemd, &argv, env) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fail(&format!("cannot execute {}", systemd.to_string_lossy()), &e);
    127
}

/// Refuses early (with a clear reason) when the systemd binary is missing or not executable.
fn check_executable(path: &Path) -> Result<()> {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
        .with_context(|| format!("systemd is not executable at {}", path.display()))
}

/// Binds our end of `$NOTIFY_SOCKET` (a datagram socket, as `sd_notify` expects).
fn notify_socket() -> Result<OwnedFd> {
    crate::sys::state::expect_kind(Path::new(NOTIFY_SOCKET), crate::sys::state::Kind::Socket)?;
    let _ = std::fs::remove_file(NOTIFY_SOCKET);
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating the notification socket")?;
    let addr = UnixAddr::new(NOTIFY_SOCKET)?;
    bind(sock.as_raw_fd(), &addr).with_context(|| format!("binding {NOTIFY_SOCKET}"))?;
    Ok(sock)
}

impl Started {
    /// Waits until systemd sends `READY=1`, exits, or `deadline` passes. Prints one progress
    /// line on stderr if the wait exceeds a second (never on stdout, never on the happy path).
    pub(crate) fn wait(&self, deadline: Instant) -> Outcome {
        let mut deadline = Deadline::at(deadline)
            .telling(|| eprintln!("nixos-wsl: waiting for systemd to finish booting..."));
        loop {
            let mut fds = [
                PollFd::new(self.notify.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            // A failed poll(2) counts as the deadline, as it always has.
            if !deadline.poll(&mut fds).unwrap_or(false) {
                return Outcome::TimedOut;
            }
            let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            if readable(&fds[0]) && self.drain_ready() {
                return Outcome::Ready;
            }
            if readable(&fds[1]) {
                // A READY=1 sent just before exiting still counts as not ready: it is gone.
                return Outcome::Died;
            }
        }
    }

    /// Reads every queued notification; true if one of them says `READY=1`.
    fn drain_ready(&self) -> bool {
        let mut ready = false;
        let mut buf = [0u8; 4096];
        while let Ok(n) = recv(self.notify.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            ready |= notification_says_ready(&buf[..n]);
        }
        ready
    }
}

/// `sd_notify` datagrams are newline-separated `KEY=VALUE` assignments.
pub(crate) fn notification_says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// For a launch that finds systemd alive but no readiness record (its starter was killed or
/// gave up): asks systemd itself, `systemctl is-system-running --wait`, bounded by `deadline`.
/// Must run after joining the namespace. True when the boot finished (running or degraded).
pub(crate) fn wait_with_systemctl(systemd: &Path, deadline: Instant) -> bool {
    let Some(systemctl) = systemctl_for(systemd) else {
        log::warn!(
            "no systemctl next to {}; not waiting for systemd",
            systemd.display()
        );
        return false;
    };
    // systemctl fails at once while systemd's private socket does not exist yet (a starter
    // killed right after exec'ing systemd): ask again until the deadline. A rare recovery
    // path, so a short pause between attempts is fine.
    loop {
        match systemctl_wait_once(&systemctl, deadline) {
            Some(ready) => return ready,
            None if Deadline::at(deadline).passed() => return false,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One `systemctl is-system-running --wait`, bounded by `deadline`: `Some(true)` when the boot
/// finished (running or degraded), `Some(false)` on another definite answer or the deadline,
/// `None` when systemd could not be asked yet.
fn systemctl_wait_once(systemctl: &Path, deadline: Instant) -> Option<bool> {
    let done = crate::sys::child::run_bounded(
        Command::new(systemctl)
            .args(["is-system-running", "--wait"])
            .env_clear(),
        Deadline::at(deadline),
    )
    .ok()?;
    match done.stdout.trim() {
        "running" | "degraded" => Some(true),
        _ if done.timed_out => Some(false),
        // Nothing, "offline" or "unknown": not connected to this systemd yet.
        "" | "offline" | "unknown" => None,
        _ => Some(false),
    }
}

/// `systemctl` of the same systemd package: `<pkg>/lib/systemd/systemd` -> `<pkg>/bin/systemctl`,
/// else the usual locations.
pub(crate) fn systemctl_for(systemd: &Path) -> Option<PathBuf> {
    let sibling = systemd
        .parent()?
        .parent()?
        .parent()
        .map(|pkg| pkg.join("bin/systemctl"));
    sibling
        .into_iter()
        .chain(
            [
                "/run/current-system/sw/bin/systemctl",
                "/usr/bin/systemctl",
                "/bin/systemctl",
            ]
            .map(PathBuf::from),
        )
        .find(|p| nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_a_whole_line() {
        assert!(notification_says_ready(b"READY=1"));
        assert!(notification_says_ready(
            b"STATUS=Startup finished\nREADY=1\n"
        ));
        assert!(!notification_says_ready(b"READY=10"));
        assert!(!notification_says_ready(b"STATUS=READY=1"));
        assert!(!notification_says_ready(b""));
    }

    #[test]
    fn systemctl_next_to_systemd() {
        let dir = std::env::temp_dir().join(format!("nixos-wsl-systemctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("lib/systemd")).unwrap();
        let ctl = dir.join("bin/systemctl");
        std::fs::write(&ctl, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&ctl, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert_eq!(systemctl_for(&dir.join("lib/systemd/systemd")), Some(ctl));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
