# nixos/default.nix of the stand-in: what `nixos-rebuild` (without a flake) evaluates,
# `<nixpkgs/nixos>` with the configuration from `<nixos-config>`.
{ configuration ? <nixos-config>, system ? builtins.currentSystem }:

(import ../stub.nix).evalConfig {
  inherit system;
  modules = [ configuration ];
}
