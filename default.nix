# Entry point for Nix without flakes, with the flake's outputs under the same names:
#
#   nix-build -A nixosConfigurations.mysystem.config.system.build.installer
#   nix-build -A packages.default
#
# flake-compat (which would read flake.lock) is not vendored, so nixpkgs is an argument.
# By default it is `<nixpkgs>` from NIX_PATH, that is your channel, not the revision
# flake.nix pins. To pin it, pass a tarball:
#
#   nix-build --arg nixpkgs 'fetchTarball "https://github.com/NixOS/nixpkgs/archive/<rev>.tar.gz"' ...
{ nixpkgs ? <nixpkgs>
, system ? builtins.currentSystem
}:

let
  crate = pkgs: pkgs.pkgsStatic.callPackage ./nix/packages/nixos-wsl.nix { };

  # As in flake.nix: the module plus its package, added with lib.mkDefault.
  wsl = { lib, pkgs, ... }: {
    imports = [ ./nix/modules ];
    wsl.package = lib.mkDefault (crate pkgs);
  };

  # What nixpkgs.lib.nixosSystem does for flakes: record the nixpkgs the system was built
  # from, so `<nixpkgs>` and `nixpkgs#` resolve to it on the installed system, offline
  # and without a channel. The store path must be named "source" (NixOS/nix#7075), which
  # fetchTarball's results already are.
  nixpkgsSource =
    if builtins.isPath nixpkgs
    then builtins.path { path = nixpkgs; name = "source"; }
    else nixpkgs;

  # What the installed system's /etc/nixos/configuration.nix imports (through `<nixos-wsl>`,
  # which the module puts on NIX_PATH): the module, and the nixpkgs this is evaluated with
  # (`<nixpkgs>`, pinned by the system itself) recorded as the system's, so that <nixpkgs>
  # and `nixpkgs#` stay pinned to it across rebuilds, as they are for flakes.
  installed = { lib, ... }: {
    imports = [ wsl ];
    nixpkgs.flake.source = lib.mkDefault nixpkgsSource;
  };

  mysystem = import (nixpkgs + "/nixos/lib/eval-config.nix") {
    system = null;
    modules = [
      wsl
      ./nix/configurations/mysystem.nix
      {
        nixpkgs.hostPlatform = "x86_64-linux";
        nixpkgs.flake.source = nixpkgsSource;
      }
    ];
  };
in
{
  packages = {
    default = crate (import nixpkgs { inherit system; });
    inherit (mysystem.config.system.build) installer tarball;
  };

  nixosModules = {
    inherit wsl installed;
    default = wsl;
  };

  nixosConfigurations = { inherit mysystem; };
}
