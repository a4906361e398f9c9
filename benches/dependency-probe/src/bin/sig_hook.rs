// The same through signal-hook's iterator (handlers + a self-pipe, and its thread-free API).
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;
fn main() {
    let signals = Signals::new([SIGTERM, SIGHUP, SIGWINCH, SIGINT]).unwrap();
    if std::env::var_os("PRINT").is_some() { println!("{:?}", signals.handle()); }
}
