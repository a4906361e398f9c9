//! `/sbin/init` in WSL's own systemd mode: see `nixos_wsl::init`. It installs its own logger
//! (the kernel log and a file under `/run/nixos-wsl/`), since PID 1's stderr is nobody's.

fn main() {
    nixos_wsl::init::main(std::env::args_os().collect())
}
