//! The login shell's decisions, made on what was observed and nothing else: pure functions,
//! tested exhaustively without root. The login shell (`shell`) surveys, asks these what to do,
//! and does it; nothing here touches the system.
//!
//! 1. [`route`]: does this launch bring systemd up at all?
//! 2. [`plan`]: under the state lock, with the namespace surveyed: join it, wait for its
//!    shutdown, or start a new one?
//! 3. [`settle`]: after starting one and waiting for it: what to record, or why to give up.

use crate::namespace::Readiness;
use crate::systemd::Outcome;

/// Step 1's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Already under systemd (`sudo -i`, ssh, WSL's systemd mode) or not root: be a plain
    /// shell for whoever we are.
    Plain,
    /// `NIXOS_WSL_SYSTEMD=off`: the configured user's session, without systemd.
    WithoutSystemd,
    /// Make sure systemd runs, join it, then the configured user's session.
    BringUp,
}

/// Step 1. `inside`: PID 1 is systemd, or nixos-wsl-init activating the system for WSL's
/// systemd mode. `root`: we run as root. `systemd_off`: the recovery switch.
pub(crate) fn route(inside: bool, root: bool, systemd_off: bool) -> Route {
    match (inside || !root, systemd_off) {
        (true, _) => Route::Plain,
        (false, true) => Route::WithoutSystemd,
        (false, false) => Route::BringUp,
    }
}

/// What the survey found where the namespace handle points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    /// No handle (first launch of the boot, or it was cleared).
    NoHandle,
    /// A handle whose PID 1 is gone or a zombie.
    Dead,
    /// A handle whose PID 1 is systemd-shutdown (a `poweroff` inside).
    ShuttingDown,
    /// A handle whose PID 1 lives.
    Alive,
}

/// Step 2's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Join the live namespace. `ask_systemd`: no launch recorded how its boot went (its
    /// starter was killed): ask systemd itself after joining, and record the answer.
    Join { ask_systemd: bool },
    /// Wait for the dying namespace's shutdown to finish (a session started there would be
    /// killed by it), then start a new one.
    AwaitShutdownThenStart,
    /// Clear whatever is left of an old namespace and start a new one.
    Start,
}

/// Step 2. `readiness` is the record for the handle's namespace.
pub(crate) fn plan(namespace: Namespace, readiness: Readiness) -> Plan {
    match namespace {
        Namespace::Alive => Plan::Join {
            ask_systemd: readiness == Readiness::Unknown,
        },
        Namespace::ShuttingDown => Plan::AwaitShutdownThenStart,
        Namespace::NoHandle | Namespace::Dead => Plan::Start,
    }
}

/// Step 3's answer, when the launch goes on with systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// What to record for the namespace.
    pub(crate) record: Readiness,
    /// systemd did not finish booting in time: say so (the session goes on).
    pub(crate) warn_slow: bool,
}

/// Step 3. `outcome`: how the wait for `READY=1` ended; `joined`: whether joining the new
/// namespace afterwards worked (never tried when systemd died). `Err` is the reason the
/// session runs without systemd.
pub(crate) fn settle(outcome: &Outcome, joined: bool) -> Result<Settled, &'static str> {
    match (outcome, joined) {
        (Outcome::Died, _) | (_, false) => Err("systemd exited while booting"),
        (Outcome::Ready, true) => Ok(Settled {
            record: Readiness::Ready,
            warn_slow: false,
        }),
        (Outcome::TimedOut, true) => Ok(Settled {
            record: Readiness::GaveUp,
            warn_slow: true,
        }),
    }
}

/// After joining a namespace nobody recorded: what the answer of `systemctl
/// is-system-running --wait` (`ready`) becomes.
pub(crate) fn asked(ready: bool) -> Readiness {
    if ready {
        Readiness::Ready
    } else {
        Readiness::GaveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOLS: [bool; 2] = [false, true];
    const NAMESPACES: [Namespace; 4] = [
        Namespace::NoHandle,
        Namespace::Dead,
        Namespace::ShuttingDown,
        Namespace::Alive,
    ];
    const READINESS: [Readiness; 3] = [Readiness::Ready, Readiness::GaveUp, Readiness::Unknown];

    /// Every combination, against the table written out by hand.
    #[test]
    fn route_table() {
        for inside in BOOLS {
            for root in BOOLS {
                for off in BOOLS {
                    let expected = if inside || !root {
                        Route::Plain
                    } else if off {
                        Route::WithoutSystemd
                    } else {
                        Route::BringUp
                    };
                    assert_eq!(route(inside, root, off), expected, "{inside} {root} {off}");
                }
            }
        }
    }

    #[test]
    fn plan_table() {
        let mut seen = 0;
        for ns in NAMESPACES {
            for r in READINESS {
                let expected = match (ns, r) {
                    (Namespace::Alive, Readiness::Unknown) => Plan::Join { ask_systemd: true },
                    (Namespace::Alive, _) => Plan::Join { ask_systemd: false },
                    (Namespace::ShuttingDown, _) => Plan::AwaitShutdownThenStart,
                    // A record of a dead namespace means nothing: start.
                    (Namespace::Dead | Namespace::NoHandle, _) => Plan::Start,
                };
                assert_eq!(plan(ns, r), expected, "{ns:?} {r:?}");
                seen += 1;
            }
        }
        assert_eq!(seen, 12);
    }

    #[test]
    fn settle_table() {
        let ready = |record, warn_slow| Ok(Settled { record, warn_slow });
        let cases = [
            (Outcome::Ready, true, ready(Readiness::Ready, false)),
            (Outcome::TimedOut, true, ready(Readiness::GaveUp, true)),
            (Outcome::Died, true, Err("systemd exited while booting")),
            (Outcome::Ready, false, Err("systemd exited while booting")),
            (
                Outcome::TimedOut,
                false,
                Err("systemd exited while booting"),
            ),
            (Outcome::Died, false, Err("systemd exited while booting")),
        ];
        for (outcome, joined, expected) in cases {
            assert_eq!(settle(&outcome, joined), expected, "{outcome:?} {joined}");
        }
        assert_eq!(asked(true), Readiness::Ready);
        assert_eq!(asked(false), Readiness::GaveUp);
    }
}
