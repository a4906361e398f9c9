# Importing the module without `wsl.enable` must change nothing: a plain NixOS system
# and the same system with nixosModules.default imported have the same toplevel store
# path. Fails at evaluation, naming what to look for.
{ pkgs, nixosSystem, module }:

let
  inherit (pkgs) lib;
  base = {
    nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
    fileSystems."/" = {
      device = "/dev/sda1";
      fsType = "ext4";
    };
    boot.loader.grub.device = "nodev";
    system.stateVersion = lib.trivial.release;
  };
  toplevel = modules: (nixosSystem { inherit modules; }).config.system.build.toplevel.outPath;
in
assert lib.assertMsg (toplevel [ base ] == toplevel [ base module ]) ''
  Importing nixosModules.default without wsl.enable changed system.build.toplevel.
  Some definition in nix/modules/ is not under `lib.mkIf cfg.enable`.
'';
pkgs.runCommand "side-effects" { } "touch $out"
