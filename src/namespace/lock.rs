//! The lock around the "running / start / wait" decision: `flock(2)` on
//! `/run/nixos-wsl/lock`, bounded by a deadline.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::paths::LOCK_FILE;
use crate::sys::deadline::Deadline;

/// Exclusive lock on the start decision. Held while checking, activating, starting and waiting
/// for systemd; released (by drop) before the user's session runs. The kernel releases it if
/// the holder dies, so a killed launch never blocks later ones.
pub(crate) struct StateLock {
    _held: Flock<File>,
}

impl StateLock {
    /// Waits for the lock, at most until `deadline`, telling the user (once) if the wait
    /// takes longer than a second. A blocking `flock` interrupted by a one-second `alarm`
    /// avoids both busy polling and an unbounded wait behind a hung holder.
    pub(crate) fn acquire(deadline: Instant) -> Result<StateLock> {
        let mut file = crate::sys::state::open_lock(Path::new(LOCK_FILE))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(StateLock { _held: lock }),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(e).context("locking the state"),
        }
        let _alarm = AlarmGuard::install()?;
        let mut wait = Deadline::at(deadline)
            .telling(|| eprintln!("nixos-wsl: waiting for another launch to start systemd..."));
        let started = Instant::now();
        loop {
            if wait.passed() {
                bail!(
                    "another launch has held {LOCK_FILE} for {} s",
                    started.elapsed().as_secs()
                );
            }
            nix::unistd::alarm::set(1);
            let result = Flock::lock(file, FlockArg::LockExclusive);
            nix::unistd::alarm::cancel();
            match result {
                Ok(lock) => return Ok(StateLock { _held: lock }),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(e).context("locking the state"),
            }
            // The alarm fired: a second has passed.
            wait.tell();
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
