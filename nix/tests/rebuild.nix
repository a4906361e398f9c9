# `sudo nixos-rebuild switch` right after installing the image, evaluated: nixos-rebuild
# (without a flake) evaluates <nixpkgs/nixos> with <nixos-config> from NIX_PATH, which the
# installed system sets to nixpkgs=flake:nixpkgs (the nixpkgs it was built from),
# nixos-config=/etc/nixos/configuration.nix and nixos-wsl=<this project's source>.
# scripts/check-nix writes the image's generated configuration.nix to a file and runs this
# with -I for those three (the stand-in nixpkgs, this repository, that file). The rebuilt
# system must be the installed one: the same toplevel store path.
let
  stub = import ./stub-nixpkgs/stub.nix;
  inherit (stub) lib;
  flake = import ../../flake.nix;
  self = flake.outputs { inherit self; nixpkgs = stub.flake; };
  installed = self.nixosConfigurations.mysystem.config;
  rebuilt = (import <nixpkgs/nixos> { system = "x86_64-linux"; }).config;
  same = path: lib.attrByPath path null installed == lib.attrByPath path null rebuilt;
  pathOf = drv: drv.outPath or drv;
  samePath = path: pathOf (lib.attrByPath path null installed) == pathOf (lib.attrByPath path null rebuilt);

  tests = {
    "the shipped configuration.nix evaluates" = lib.hasPrefix "/nix/store/" rebuilt.system.build.toplevel.outPath;
    "it pins the same nixpkgs" = same [ "nixpkgs" "flake" "source" ];
    "it uses the same NixOS-WSL package and source" = samePath [ "wsl" "package" ] && samePath [ "wsl" "source" ];
    "it keeps the settings" = lib.all same [ [ "wsl" "defaultUser" ] [ "wsl" "nativeSystemd" ] [ "system" "stateVersion" ] [ "nix" "settings" "experimental-features" ] ];
    "the same /etc" = samePath [ "system" "build" "etc" ];
    "the same system profile" = samePath [ "system" "path" ];
    "the rebuilt system is the installed one (same toplevel)" = samePath [ "system" "build" "toplevel" ];
  };

  result = name: value:
    let outcome = builtins.tryEval value; in
    (if outcome.success && outcome.value == true then "PASS " else "FAIL ") + "rebuild: ${name}";
in
lib.mapAttrsToList result tests
