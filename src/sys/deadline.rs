//! Deadlines. Every wait of ours is bounded, and every wait a person may be sitting through
//! says so once, after a second, on stderr (never on stdout, never on the happy path).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollTimeout};

/// How long a wait stays silent before telling the user about it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(1);

/// A point in time to give up at, and who to tell if waiting for it takes longer than
/// [`PATIENCE`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    started: Instant,
    tell: Option<fn()>,
    told: bool,
}

impl Deadline {
    /// Gives up at `at`; tells nobody.
    pub(crate) fn at(at: Instant) -> Deadline {
        Deadline {
            at,
            started: Instant::now(),
            tell: None,
            told: false,
        }
    }

    /// Gives up `timeout` from now; tells nobody.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline::at(Instant::now() + timeout)
    }

    /// Calls `tell` once, when a wait on this deadline has lasted [`PATIENCE`].
    pub(crate) fn telling(self, tell: fn()) -> Deadline {
        Deadline {
            tell: Some(tell),
            ..self
        }
    }

    /// Time left (zero once it passed).
    pub(crate) fn remaining(&self) -> Duration {
        remaining(self.at)
    }

    /// True once it passed.
    pub(crate) fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Tells the user now (once), whatever the time.
    pub(crate) fn tell(&mut self) {
        if let (Some(tell), false) = (self.tell, self.told) {
            self.told = true;
            tell();
        }
    }

    /// Tells the user if the wait has lasted [`PATIENCE`].
    pub(crate) fn tick(&mut self) {
        if self.started.elapsed() >= PATIENCE {
            self.tell();
        }
    }

    /// Waits until one of `fds` has an event or the deadline passes: `Ok(true)` for an event.
    /// Interrupted polls are resumed; the user is told at the one-second mark; any other
    /// failure of `poll(2)` is the caller's to handle.
    pub(crate) fn poll(&mut self, fds: &mut [PollFd]) -> nix::Result<bool> {
        loop {
            let left = self.remaining();
            if left.is_zero() {
                return Ok(false);
            }
            let slice = match (self.tell, self.told) {
                (Some(_), false) => left.min(PATIENCE.saturating_sub(self.started.elapsed())),
                _ => left,
            };
            match poll(fds, poll_timeout(slice)) {
                Ok(0) => self.tick(),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Deadline::poll`] on one descriptor, for readability; a failed `poll(2)` counts as
    /// the deadline (every caller then goes on as after a timeout).
    pub(crate) fn readable(&mut self, fd: &impl AsFd) -> bool {
        let mut fds = [PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
        self.poll(&mut fds).unwrap_or(false)
    }
}

/// Time left until `at` (zero once it passed).
pub(crate) fn remaining(at: Instant) -> Duration {
    at.saturating_duration_since(Instant::now())
}

/// A `poll(2)` timeout for `wait`: whole milliseconds rounded up (a sub-millisecond rest
/// must not become a busy zero-timeout poll), at most `i32::MAX`.
pub(crate) fn poll_timeout(wait: Duration) -> PollTimeout {
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn poll_timeouts_round_up() {
        assert_eq!(poll_timeout(Duration::ZERO), PollTimeout::ZERO);
        assert_eq!(
            poll_timeout(Duration::from_micros(1)),
            PollTimeout::from(1u8)
        );
        assert_eq!(
            poll_timeout(Duration::from_millis(1500)),
            PollTimeout::from(1500u16)
        );
        assert_eq!(poll_timeout(Duration::MAX), PollTimeout::MAX);
    }

    static TOLD: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn tells_once_after_a_second_and_gives_up_at_the_deadline() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let started = Instant::now();
        let mut quick = Deadline::after(Duration::from_millis(50)).telling(|| {
            TOLD.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!quick.readable(&read));
        assert_eq!(TOLD.load(Ordering::SeqCst), 0, "told before a second");
        let mut slow = Deadline::after(Duration::from_millis(1300)).telling(|| {
            TOLD.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!slow.readable(&read));
        assert!(started.elapsed() >= Duration::from_millis(1300));
        assert_eq!(TOLD.load(Ordering::SeqCst), 1, "told exactly once");
        slow.tell();
        assert_eq!(TOLD.load(Ordering::SeqCst), 1, "told exactly once");
    }

    #[test]
    fn an_event_ends_the_wait() {
        let (read, write) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&write, b"x").unwrap();
        assert!(Deadline::after(Duration::from_secs(5)).readable(&read));
    }
}
