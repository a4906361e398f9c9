# A stand-in for the ~1,500 NixOS modules of nixpkgs: only the option declarations of what
# the WSL module sets or reads (each with nixpkgs 25.11's type and default; the file header
# names the nixpkgs module it was checked against) and the few implementation rules the
# module depends on. An option the WSL module defines that is not declared here is an
# unknown option, as it would be in NixOS if nixpkgs had no such option.
[
  ./assertions.nix
  ./users-groups.nix
  ./shells-environment.nix
  ./etc.nix
  ./systemd.nix
  ./networking.nix
  ./misc.nix
  ./nix.nix
  ./top-level.nix
  ./utils.nix
]
