// Block SIGTERM/SIGHUP/SIGWINCH and open a signalfd, as the supervisor does.
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
fn main() {
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGWINCH, Signal::SIGINT] { mask.add(s); }
    mask.thread_block().unwrap();
    let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).unwrap();
    if std::env::var_os("PRINT").is_some() { println!("{fd:?}"); }
}
