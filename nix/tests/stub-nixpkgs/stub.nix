# A stand-in for nixpkgs: just enough of `lib` and of a package set to evaluate
# flake.nix and default.nix offline, where no nixpkgs exists, and check how their
# outputs are named and wired. Values are marker strings; nothing here builds.
let
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

  # What nixpkgs.lib.nixosSystem and nixos/lib/eval-config.nix return, reduced to the
  # attributes the outputs refer to, plus the arguments they were called with.
  nixosSystem = args: {
    inherit args;
    config.system.build = {
      installer = "installer";
      tarball = "tarball";
    };
    options = { };
  };

  lib = {
    inherit genAttrs nixosSystem;
    optionalAttrs = condition: attrs: if condition then attrs else { };
  };

  pkgs = system: {
    inherit lib;
    stdenv.hostPlatform = { inherit system; };
    pkgsStatic.callPackage = path: _: "static:${system}:${baseNameOf path}";
    mkShell = _: "shell:${system}";
    runCommand = name: _: _: "check:${name}";
    nixosOptionsDoc = _: { optionsJSON = "options-doc"; };
    cargo = "cargo";
    clippy = "clippy";
    rustc = "rustc";
    rustfmt = "rustfmt";
    nixpkgs-fmt = "nixpkgs-fmt:${system}";
    deadnix = "deadnix";
  };
in
{
  inherit lib pkgs;
  # The nixpkgs flake's outputs.
  flake = {
    inherit lib;
    legacyPackages = genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgs;
  };
}
