//! Processes by descriptor: a pidfd names exactly one process, never a later one that reused
//! its PID.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;

use super::deadline::Deadline;

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits and that signals
/// exactly that process.
pub(crate) fn open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; it touches
    // no memory of ours. The result is close-on-exec by definition.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd).with_context(|| format!("opening pid {pid}"))? as i32;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`.
pub(crate) fn signal(pidfd: &OwnedFd, signal: i32) -> Result<()> {
    // SAFETY: the null siginfo makes the kernel fill in a plain kill()-style one; no memory of
    // ours is read or written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop).context("sending a signal")
}

/// Waits until the process behind `pidfd` exits or `deadline` passes. True when it exited.
pub(crate) fn wait_exit(pidfd: &OwnedFd, mut deadline: Deadline) -> bool {
    deadline.readable(pidfd)
}

/// Waits until process `pid` exits or `deadline` passes; true when it is gone (also when it
/// was gone already).
pub(crate) fn wait_pid_exit(pid: Pid, deadline: Deadline) -> bool {
    match open(pid) {
        Ok(fd) => wait_exit(&fd, deadline),
        Err(_) => true,
    }
}
