# What the installed system rebuilds from: the image ships /etc/nixos (a configuration
# equivalent to the one it was built from, or the user's own directory) and everything that
# configuration needs offline: this project's source in the store, reachable as <nixos-wsl>
# and as the `nixos-wsl` flake in the system registry, next to the nixpkgs the system was
# built from (`nixpkgs.flake.source`, which nixpkgs turns into <nixpkgs> and `nixpkgs#`).
# `sudo nixos-rebuild switch` right after install then rebuilds the same system.
{ config, lib, ... }:

let
  cfg = config.wsl;
  inherit (lib) types;

  # This repository, as far as the module, the package and the flake need it.
  source = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../flake.nix
      ../../default.nix
      ../../LICENSE
      ../../nix
      ../../Cargo.toml
      ../../Cargo.lock
      ../../src
      ../../tests
      ../../benches
    ];
  };

  nixList = list: "[ ${lib.concatMapStringsSep " " (item: ''"${item}"'') list} ]";
  features = config.nix.settings.experimental-features or [ ];

  # The settings of this system that the generated configuration carries over. For
  # nixosConfigurations.mysystem they are all there are (nix/configurations/mysystem.nix;
  # the evaluation tests rebuild from the generated file and compare the systems).
  body = ''
    nixpkgs.hostPlatform = "${config.nixpkgs.hostPlatform.system}";

    wsl.enable = true;
    wsl.defaultUser = "${cfg.defaultUser}";
  '' + lib.optionalString (!cfg.nativeSystemd) ''
    wsl.nativeSystemd = false;
  '' + lib.optionalString (features != [ ]) ''

    nix.settings.experimental-features = ${nixList features};
  '' + ''

    # The NixOS release this system was first installed with (see `man configuration.nix`);
    # leave it as it is when you upgrade.
    system.stateVersion = "${config.system.stateVersion}";
  '';

  indent = text: lib.concatMapStrings (line: if line == "" then "\n" else "  ${line}\n")
    (lib.init (lib.splitString "\n" text));

  configuration = ''
    # This system's configuration. Change it, then apply it with
    #
    #   sudo nixos-rebuild switch
    #
    # NixOS options: `man configuration.nix`; NixOS-WSL's (wsl.*): nix/README.md in
    # ${if cfg.tarball.flake then "the nixos-wsl flake input" else "$(nix-instantiate --find-file nixos-wsl)"}.
    # Both are the versions this system was built from, in the store: rebuilding needs no
    # network until you change them.
    { ... }:

    {
  '' + indent (lib.optionalString (!cfg.tarball.flake) ''
    imports = [
      # NixOS-WSL, with the nixpkgs it was built with kept as this system's <nixpkgs>.
      (import <nixos-wsl> { }).nixosModules.installed
    ];

  '' + body) + ''
    }
  '';

  flake = ''
    # This system, as a flake: `sudo nixos-rebuild switch` builds
    # nixosConfigurations.<host name> from ./configuration.nix. Both inputs resolve through
    # the system's flake registry to the versions the system was built from (in the store);
    # point them elsewhere (e.g. github:NixOS/nixpkgs/nixos-25.11) to upgrade.
    {
      inputs.nixpkgs.url = "nixpkgs";
      inputs.nixos-wsl.url = "nixos-wsl";
      inputs.nixos-wsl.inputs.nixpkgs.follows = "nixpkgs";

      outputs = { nixpkgs, nixos-wsl, ... }: {
        nixosConfigurations.${config.networking.hostName} = nixpkgs.lib.nixosSystem {
          modules = [
            nixos-wsl.nixosModules.default
            ./configuration.nix
          ];
        };
      };
    }
  '';
in
{
  options.wsl = {
    source = lib.mkOption {
      type = types.path;
      default = source;
      defaultText = lib.literalMD "this repository's module, package and flake, in the store";
      readOnly = true;
      description = ''
        NixOS-WSL's source as the system ships it: `<nixos-wsl>` in {env}`NIX_PATH` and the
        `nixos-wsl` flake in the system's registry.
      '';
    };

    tarball = {
      configPath = lib.mkOption {
        type = types.nullOr types.path;
        default = null;
        example = lib.literalExpression "./nixos";
        description = ''
          A directory the image ships as {file}`/etc/nixos` instead of the generated
          configuration (your own configuration, with everything it imports).
        '';
      };

      flake = lib.mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = ''
          Whether the generated {file}`/etc/nixos` is a flake ({file}`flake.nix` with
          nixpkgs and nixos-wsl as inputs, and {file}`configuration.nix`) instead of a
          {file}`configuration.nix` that finds NixOS-WSL as `<nixos-wsl>`.
        '';
      };

      configuration = lib.mkOption {
        type = types.attrsOf types.str;
        readOnly = true;
        default = { "configuration.nix" = configuration; } // lib.optionalAttrs cfg.tarball.flake { "flake.nix" = flake; };
        defaultText = lib.literalMD "generated from this system's settings";
        description = "The files of the generated {file}`/etc/nixos`, by name.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    # `nixos-rebuild` without a flake reads <nixos-config>; nixpkgs' flake support sets
    # NIX_PATH to `nixpkgs=flake:nixpkgs` only (nixos/modules/misc/nixpkgs-flake.nix, with
    # mkDefault, as here, so the two lists merge and a user's own nix.nixPath replaces both).
    nix.nixPath = lib.mkIf (config.nixpkgs.flake.source != null) (lib.mkDefault [
      "nixos-config=/etc/nixos/configuration.nix"
      "nixos-wsl=${cfg.source}"
    ]);
    nix.registry.nixos-wsl.to = {
      type = "path";
      path = "${cfg.source}";
    };
  };
}
