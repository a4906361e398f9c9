//! Root's login shell in a NixOS WSL distribution: see `nixos_wsl::shell`.

fn main() {
    nixos_wsl::logging::init("nixos-wsl-shell");
    nixos_wsl::shell::main(std::env::args_os().collect())
}
