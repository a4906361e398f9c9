# A stand-in for the nixpkgs flake: the real nixpkgs lib (../eval/lib.nix), with
# lib.nixosSystem evaluating the stand-in NixOS (../eval/eval-config.nix), and the
# stand-in packages. Only what nixpkgs' package set and its ~1,500 NixOS modules would
# provide is a stand-in; every lib function is the real one.
let
  lib = import ../eval/lib.nix;
  evalConfig = import ../eval/eval-config.nix { inherit lib; };
  pkgs = system: import ../eval/pkgs.nix { inherit lib system; };

  # A flake's source is a store path named "source" (as fetched); `<nixpkgs>` of an installed
  # system is that path, which `builtins.path { name = "source"; }` reproduces.
  outPath = builtins.path { path = ./.; name = "source"; };

  # nixpkgs' flake.nix: nixosSystem records the nixpkgs it came from.
  nixosSystem = args: evalConfig (args // {
    modules = args.modules ++ [{ nixpkgs.flake.source = outPath; }];
  });
in
{
  inherit pkgs evalConfig;
  lib = lib // { inherit nixosSystem; };
  flake = {
    lib = lib // { inherit nixosSystem; };
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgs;
    inherit outPath;
  };
}
