# nixos/lib/eval-config.nix over the stand-in NixOS (./nixos): lib.evalModules of the real
# lib, the given modules, the stand-in module declarations and the stand-in packages for
# nixpkgs.hostPlatform. Returns what eval-config.nix returns (config, options, ...).
{ lib }:
{ modules, system ? null, specialArgs ? { }, ... }:

lib.evalModules {
  inherit specialArgs;
  class = "nixos";
  modules = import ./nixos ++ modules ++ [
    ({ config, ... }: {
      _module.args.pkgs = import ./pkgs.nix { inherit lib; inherit (config.nixpkgs.hostPlatform) system; };
    })
  ] ++ lib.optional (system != null) { nixpkgs.hostPlatform = lib.mkDefault system; };
}
