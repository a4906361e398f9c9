//! Step 5, only when systemd cannot be exec'd: the smallest PID 1 that keeps a WSL
//! distribution usable. WSL keeps serving sessions (its own session process is a child of
//! PID 1); what PID 1 must still do is reap the orphans that are re-parented to it, or the
//! process table fills with zombies.
//!
//! Signal policy (all signals stay blocked; the ones below are read from a signalfd):
//! - SIGCHLD: reap every exited child (loop: SIGCHLD coalesces).
//! - SIGTERM, SIGINT: shut down the way a container init does on `docker stop` / Ctrl-C:
//!   SIGTERM to every process, up to [`GRACE`] for them to exit, SIGKILL to the rest, then
//!   exit, which ends the distribution (the next `wsl` starts a fresh boot).
//! - everything else: ignored (a PID 1 does not die of stray signals; the kernel already
//!   drops default-action signals sent to PID 1 from inside its namespace).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals that shut the distribution down.
pub(crate) const SHUTDOWN: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// What the reaper does with a signal it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Reap,
    Shutdown,
    Ignore,
}

/// The policy above, as a table.
pub(crate) fn action(sig: Signal) -> Action {
    if sig == Signal::SIGCHLD {
        Action::Reap
    } else if SHUTDOWN.contains(&sig) {
        Action::Shutdown
    } else {
        Action::Ignore
    }
}

/// Becomes the reaping PID 1; never returns (shutdown exits the process).
pub(crate) fn run() -> ! {
    let _ = SigSet::all().thread_block();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for sig in SHUTDOWN {
        mask.add(sig);
    }
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot read signals ({e}); reaping without them");
            reap_blocking()
        }
    };
    log::info!("reaping orphans; SIGTERM or SIGINT to PID 1 shuts the distribution down");
    loop {
        reap_all();
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match action(sig) {
                    Action::Reap | Action::Ignore => {}
                    Action::Shutdown => shutdown(&sfd, sig),
                }
            }
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => {
                log::error!("reading signals failed ({e}); reaping without them");
                reap_blocking()
            }
        }
    }
}

/// Reaps every exited child without blocking. Returns how many.
fn reap_all() -> usize {
    let mut n = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return n,
            Ok(_) => n += 1,
            Err(Errno::EINTR) => {}
            Err(_) => return n,
        }
    }
}

/// Without a signalfd: block in `waitpid`, and sleep while there are no children at all.
fn reap_blocking() -> ! {
    loop {
        if let Err(Errno::ECHILD) = waitpid(Pid::from_raw(-1), None) {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// SIGTERM to everyone, [`GRACE`] to exit, SIGKILL to whatever is left, then exit.
fn shutdown(sfd: &SignalFd, sig: Signal) -> ! {
    log::warn!("{sig} received: stopping every process and ending the distribution");
    let deadline = Instant::now() + GRACE;
    // kill(-1) reaches every process we may signal except ourselves.
    if kill(Pid::from_raw(-1), Signal::SIGTERM).is_ok() {
        loop {
            reap_all();
            // ESRCH: nothing left to signal.
            if kill(Pid::from_raw(-1), None) == Err(Errno::ESRCH) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("processes left after {GRACE:?}; killing them");
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                break;
            }
            wait_for_signal(sfd, left.min(Duration::from_millis(100)));
        }
    }
    reap_all();
    nix::unistd::sync();
    // Exiting PID 1 makes the kernel kill anything still in the namespace.
    std::process::exit(0)
}

/// Waits until a signal is pending on `sfd` (a child exited) or `timeout` passes.
fn wait_for_signal(sfd: &SignalFd, timeout: Duration) {
    if crate::sys::deadline::Deadline::after(timeout).readable(sfd) {
        // Drain: the children are reaped by the caller's next reap_all.
        let _ = sfd.read_signal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_policy() {
        assert_eq!(action(Signal::SIGCHLD), Action::Reap);
        assert_eq!(action(Signal::SIGTERM), Action::Shutdown);
        assert_eq!(action(Signal::SIGINT), Action::Shutdown);
        for sig in [
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGQUIT,
            Signal::SIGPIPE,
        ] {
            assert_eq!(action(sig), Action::Ignore, "{sig}");
        }
    }
}
