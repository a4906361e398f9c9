# The real nixpkgs lib: the 25.11 branch-off in ../shared/nixpkgs-lib/lib. scripts/check-nix
# passes its location in NIXOS_WSL_NIXPKGS_LIB: a copy under target/ in which
# lib.filesystem.pathType falls back to readDir of the parent where Nix (< 2.14, such as
# Debian's 2.8) has no builtins.readFileType, as lib did before it required 2.14; lib.fileset
# needs it. Nothing else in the copy differs.
let
  path = builtins.getEnv "NIXOS_WSL_NIXPKGS_LIB";
in
if path == "" then throw "NIXOS_WSL_NIXPKGS_LIB is not set: run scripts/check-nix, which makes the lib copy"
else import (/. + path)
