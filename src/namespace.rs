//! The systemd namespace: its on-disk handles, the lock around the "running / start / wait"
//! decision, the liveness probe, and joining it.
//!
//! Identity is kept as an nsfs bind mount (`/run/nixos-wsl/ns/pid`), never as a PID text
//! file: a bind-mounted namespace file names exactly one namespace for as long as it exists
//! and cannot be confused by PID reuse (NixOS-WSL #67, #87). systemd's outer PID is cached
//! next to it only as a hint, checked against the handle on every use.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::paths::{HANDLE_DIR, INIT_PID_HINT, LOCK_FILE, PID_HANDLE, READY_FILE, STATE_DIR};

/// Makes sure `/run/nixos-wsl` is a real directory owned by root. A symlink there is removed
/// (never followed: it could point anywhere); any other non-directory is renamed aside.
pub fn prepare_state_dir() -> Result<()> {
    let dir = Path::new(STATE_DIR);
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => {
            if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
                // Someone else could plant handles or logs here: take the directory back.
                std::os::unix::fs::chown(dir, Some(0), Some(0))
                    .with_context(|| format!("taking ownership of {STATE_DIR}"))?;
                std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .with_context(|| format!("fixing permissions of {STATE_DIR}"))?;
            }
            return Ok(());
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            log::warn!("{STATE_DIR} was a symlink; removing it");
            std::fs::remove_file(dir)
                .with_context(|| format!("removing the symlink {STATE_DIR}"))?;
        }
        Ok(_) => {
            let aside = format!("{STATE_DIR}.stale.{}", std::process::id());
            log::warn!("{STATE_DIR} was not a directory; moved it to {aside}");
            std::fs::rename(dir, &aside).with_context(|| format!("moving {STATE_DIR} aside"))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {STATE_DIR}")),
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        // Concurrent first launches race to create it; losing is fine.
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other.with_context(|| format!("creating {STATE_DIR}")),
    }
}

/// Exclusive lock on the start decision. Held while checking, activating, starting and waiting
/// for systemd; released (by drop) before the user's session runs. The kernel releases it if
/// the holder dies, so a killed launch never blocks later ones.
pub struct StateLock(#[allow(dead_code)] Flock<File>);

impl StateLock {
    /// Waits for the lock, at most until `deadline`, telling the user (once) if the wait
    /// takes longer than a second. A blocking `flock` interrupted by a one-second `alarm`
    /// avoids both busy polling and an unbounded wait behind a hung holder.
    pub fn acquire(deadline: Instant) -> Result<StateLock> {
        let mut file = crate::state::open_lock(Path::new(LOCK_FILE))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(StateLock(lock)),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(e).context("locking the state"),
        }
        let _alarm = AlarmGuard::install()?;
        let started = Instant::now();
        let mut told = false;
        loop {
            if Instant::now() >= deadline {
                bail!(
                    "another launch has held {LOCK_FILE} for {} s",
                    started.elapsed().as_secs()
                );
            }
            nix::unistd::alarm::set(1);
            let result = Flock::lock(file, FlockArg::LockExclusive);
            nix::unistd::alarm::cancel();
            match result {
                Ok(lock) => return Ok(StateLock(lock)),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(e).context("locking the state"),
            }
            if !told {
                told = true;
                eprintln!("nixos-wsl: waiting for another launch to start systemd...");
            }
        }
    }
}

/// A no-op SIGALRM handler installed without `SA_RESTART`, so the alarm interrupts `flock`;
/// the previous disposition is restored on drop.
struct AlarmGuard(SigAction);

extern "C" fn on_alarm(_: libc::c_int) {}

impl AlarmGuard {
    fn install() -> Result<AlarmGuard> {
        let action = SigAction::new(
            SigHandler::Handler(on_alarm),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing, so it is trivially async-signal-safe.
        let old = unsafe { sigaction(Signal::SIGALRM, &action) }.context("installing SIGALRM")?;
        Ok(AlarmGuard(old))
    }
}

impl Drop for AlarmGuard {
    fn drop(&mut self) {
        // SAFETY: restores the disposition that was in place before `install`.
        let _ = unsafe { sigaction(Signal::SIGALRM, &self.0) };
    }
}

/// An open handle to the systemd namespace of this boot: its PID namespace, bound at
/// [`PID_HANDLE`] while systemd's process was already PID 1 there but had not exec'd systemd
/// yet (see `systemd::start`), so no systemd can run that no handle names. The mount
/// namespace to join is systemd's own (`/proc/<pid>/ns/mnt`).
pub struct Handle {
    pid_ns: OwnedFd,
    /// Inode of the PID namespace: its identity, as in `/proc/<pid>/ns/pid -> pid:[<ino>]`.
    pub pid_ino: u64,
}

/// The systemd namespace, joined: our mount namespace is systemd's, our next child is in its
/// PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// Inode of its PID namespace: the identity readiness records refer to.
    pub pid_ino: u64,
    /// systemd's PID outside the namespace.
    pub init_pid: i32,
    /// The hint file named it (no scan of `/proc` was needed).
    pub hinted: bool,
}

/// Opens the handle. `Ok(None)` when there is none or it is not a namespace file (a stale
/// plain file, garbage, a handle whose bind mount is gone).
pub fn open_handle() -> Result<Option<Handle>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(PID_HANDLE)
    {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {PID_HANDLE}")),
    };
    let fs = fstatfs(file.as_fd()).with_context(|| format!("inspecting {PID_HANDLE}"))?;
    if fs.filesystem_type() != NSFS_MAGIC {
        return Ok(None);
    }
    let pid_ino = file.metadata()?.ino();
    // A handle naming our own PID namespace would make us "join" ourselves and boot without
    // systemd: such a handle is garbage, whoever bound it.
    if std::fs::metadata("/proc/self/ns/pid").is_ok_and(|own| own.ino() == pid_ino) {
        return Ok(None);
    }
    Ok(Some(Handle {
        pid_ns: OwnedFd::from(file),
        pid_ino,
    }))
}

/// Joins the handle's namespace if its PID 1 is alive: finds that process outside (the hint
/// first, else a scan of `/proc`), joins its mount namespace and the PID namespace (for our
/// children). `None` when PID 1 is gone or a zombie: the namespace is dead. Also `None` when
/// it is going down (a `poweroff` inside): then PID 1 is systemd-shutdown, which kills every
/// process of the namespace before it exits, so a session started there would be killed;
/// this waits (until `deadline`) for it to finish instead, so the next systemd boots alone.
pub fn join_if_alive(handle: &Handle, deadline: Instant) -> Result<Option<Joined>> {
    let Some(Found {
        pid: init_pid,
        hinted,
        shutting_down,
    }) = locate_init(handle.pid_ino)
    else {
        return Ok(None);
    };
    if shutting_down {
        log::info!("the systemd of this boot is shutting down; waiting for it to finish");
        wait_for_exit(init_pid, deadline);
        return Ok(None);
    }
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
        hinted,
    }))
}

/// Waits until process `pid` has exited, at most until `deadline`; says so on stderr once
/// the wait exceeds a second.
fn wait_for_exit(pid: i32, deadline: Instant) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Ok(pidfd) = crate::systemd::pidfd_open(nix::unistd::Pid::from_raw(pid)) else {
        return; // already gone
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let mut wait = |limit: Duration| {
        let ms = u16::try_from(remaining(deadline).min(limit).as_millis()).unwrap_or(u16::MAX);
        // EINTR counts as not yet: the caller boots a new systemd either way.
        poll(&mut fds, PollTimeout::from(ms)).is_ok_and(|n| n > 0)
    };
    if !wait(Duration::from_secs(1)) && !remaining(deadline).is_zero() {
        log::warn!("waiting for the previous boot to finish shutting down");
        wait(Duration::MAX);
    }
}

/// The PID (in our namespace) of the live init of the PID namespace `pid_ino`. Reads only:
/// `nixos-wsl status` uses it too, and never changes a file.
pub fn find_init(pid_ino: u64) -> Option<i32> {
    locate_init(pid_ino).map(|found| found.pid)
}

/// A live init, as [`locate_init`] found it.
struct Found {
    pid: i32,
    /// The hint named it (else a scan of `/proc` found it: the hint is missing or wrong, and
    /// [`remember_init`] repairs it).
    hinted: bool,
    /// It is systemd-shutdown: systemd's PID 1 execs it for poweroff, reboot and halt.
    shutting_down: bool,
}

/// [`find_init`], with what the same read of its `/proc/<pid>/status` tells.
fn locate_init(pid_ino: u64) -> Option<Found> {
    let hint = std::fs::read_to_string(INIT_PID_HINT)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let found = |pid: i32, hinted: bool| {
        live_init_status(pid, pid_ino).map(|status| Found {
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

/// After a launch joined: rewrites the hint when a scan had to find systemd, so the next
/// launch does not scan again. Best effort (a read-only `/run` only costs the scan).
pub fn remember_init(joined: &Joined) {
    if !joined.hinted {
        let _ = write_hint(joined.init_pid);
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
pub fn status_says_live_init(status: &str) -> bool {
    let innermost_is_1 = status_field(status, "NSpid:").split_whitespace().last() == Some("1");
    let state = status_field(status, "State:").chars().next();
    innermost_is_1 && !matches!(state, Some('Z' | 'X' | 'x') | None)
}

fn write_hint(pid: i32) -> Result<()> {
    crate::state::write_atomic(Path::new(INIT_PID_HINT), format!("{pid}\n").as_bytes())
}

/// Mounts a private tmpfs on the handle directory (once per boot). Private, so the handle bind
/// mounts made later never propagate: not out into other WSL mount namespaces, and not into
/// the systemd namespace itself (a mount namespace must not hold a handle to itself).
pub fn prepare_handle_dir() -> Result<()> {
    let state = std::fs::metadata(STATE_DIR).with_context(|| format!("inspecting {STATE_DIR}"))?;
    match std::fs::symlink_metadata(HANDLE_DIR) {
        Ok(meta) if meta.is_dir() && meta.dev() != state.dev() => return Ok(()),
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => std::fs::remove_file(HANDLE_DIR)
            .with_context(|| format!("removing stale {HANDLE_DIR}"))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {HANDLE_DIR}")),
    }
    match std::fs::DirBuilder::new().mode(0o700).create(HANDLE_DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {HANDLE_DIR}")),
    }
    mount(
        Some("nixos-wsl"),
        HANDLE_DIR,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64k"),
    )
    .with_context(|| format!("mounting a tmpfs on {HANDLE_DIR}"))?;
    mount(
        None::<&str>,
        HANDLE_DIR,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("making {HANDLE_DIR} private"))
}

/// Bind-mounts the PID namespace of `init` (systemd's process, PID 1 of the new namespace,
/// not yet exec'd) onto the handle path and records its PID as the lookup hint. The handle
/// dir is private, so the bind never propagates. (A mount-namespace file would be the other
/// candidate, but binding one fails spuriously with EINVAL on kernels whose namespace IDs are
/// not allocated in creation order across CPUs, Linux >= 6.18.)
pub fn bind_handle(init: nix::unistd::Pid) -> Result<()> {
    crate::state::expect_kind(Path::new(PID_HANDLE), crate::state::Kind::File)?;
    File::create(PID_HANDLE).with_context(|| format!("creating {PID_HANDLE}"))?;
    let source = format!("/proc/{init}/ns/pid");
    mount(
        Some(source.as_str()),
        PID_HANDLE,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {source} on {PID_HANDLE}"))?;
    write_hint(init.as_raw())
}

/// Forgets a dead namespace: detaches the handle mount and removes the readiness record.
pub fn clear_handle() -> Result<()> {
    use crate::state::{expect_kind, move_aside, Kind};
    // Only ever inside the real handle directory: a link planted at `ns` could lead anywhere.
    if !expect_kind(Path::new(HANDLE_DIR), Kind::Dir)? {
        // UMOUNT_NOFOLLOW: a symlink planted at the handle path must not unmount its target.
        // Repeat: an interrupted start may have bound it more than once.
        while umount2(PID_HANDLE, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_ok() {}
        for file in [PID_HANDLE, INIT_PID_HINT] {
            // Unlinking never follows the last component; a directory there is moved aside.
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => move_aside(Path::new(file))?,
            }
        }
    }
    match std::fs::remove_file(READY_FILE) {
        Err(e) if e.kind() != ErrorKind::NotFound => move_aside(Path::new(READY_FILE)),
        _ => Ok(()),
    }
}

/// What a previous launch recorded about systemd's readiness in the namespace `pid_ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// systemd reported that its boot finished.
    Ready,
    /// A launch gave up waiting; later launches do not wait again.
    GaveUp,
    /// Nothing recorded for this namespace: it is still booting, or its starter was killed.
    Unknown,
}

/// Reads the readiness record; records of another (older) namespace count as `Unknown`.
pub fn readiness(pid_ino: u64) -> Readiness {
    let text = std::fs::read_to_string(READY_FILE).unwrap_or_default();
    parse_readiness(&text, pid_ino)
}

fn parse_readiness(text: &str, pid_ino: u64) -> Readiness {
    let mut words = text.split_whitespace();
    let (state, ino) = (
        words.next(),
        words.next().and_then(|w| w.parse::<u64>().ok()),
    );
    match (state, ino) {
        (Some("ready"), Some(i)) if i == pid_ino => Readiness::Ready,
        (Some("gave-up"), Some(i)) if i == pid_ino => Readiness::GaveUp,
        _ => Readiness::Unknown,
    }
}

/// Records readiness atomically (write a temporary file, rename it into place).
pub fn record_readiness(state: Readiness, pid_ino: u64) -> Result<()> {
    let word = match state {
        Readiness::Ready => "ready",
        Readiness::GaveUp => "gave-up",
        Readiness::Unknown => return Ok(()),
    };
    let record = format!("{word} {pid_ino}\n");
    crate::state::write_atomic(Path::new(READY_FILE), record.as_bytes())
}

/// True when PID 1 of our PID namespace is systemd: WSL's own systemd mode, or a launch from
/// inside our namespace (`sudo -i`, `su -`, ssh running root's shell). Namespace-based, not an
/// environment marker, so it survives `sudo`'s environment reset (NixOS-WSL #51, #167).
pub fn inside_systemd() -> bool {
    let exe = std::fs::read_link("/proc/1/exe").ok();
    let named = |name: &[u8]| name == b"systemd";
    if let Some(exe) = exe {
        use std::os::unix::ffi::OsStrExt;
        return exe.file_name().is_some_and(|n| named(n.as_bytes()));
    }
    // Without ptrace access to PID 1 (not root), fall back to its command name.
    std::fs::read("/proc/1/comm").is_ok_and(|comm| named(comm.trim_ascii_end()))
}

/// Remaining time until `deadline` (zero once it passed).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
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
    fn readiness_is_tied_to_the_namespace() {
        assert_eq!(parse_readiness("ready 42\n", 42), Readiness::Ready);
        assert_eq!(parse_readiness("gave-up 42\n", 42), Readiness::GaveUp);
        assert_eq!(parse_readiness("ready 41\n", 42), Readiness::Unknown);
        assert_eq!(parse_readiness("", 42), Readiness::Unknown);
        assert_eq!(parse_readiness("ready x", 42), Readiness::Unknown);
    }
}
