//! The signal state an exec'd program expects.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

/// Puts every disposition back to default and empties the mask (Rust's runtime ignores
/// SIGPIPE, and the supervisor blocks what it forwards; neither must reach the program).
/// Called in forked children right before exec (systemd, the activation, the user's shell).
pub(crate) fn reset_for_exec() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition runs no code of ours.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}
