# nixos/modules/config/{nix,nix-channel,nix-flakes}.nix and misc/nixpkgs-flake.nix: the
# options the WSL module sets or reads, with nixpkgs' types and defaults, and what it relies
# on: nix.conf from nix.settings, nix.nixPath's default (channels), nixpkgs-flake's NIX_PATH (`nixpkgs=flake:nixpkgs`,
# with mkDefault) and registry entry, and the registry written to /etc/nix/registry.json.
# NIX_PATH itself, which nixpkgs exports through the session variables, is written to
# /etc/nix/nix-path here, one entry a line (a stand-in's file, so the toplevel depends on it).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.nix;
  reference = types.attrsOf (types.oneOf [ types.str types.int types.bool types.path types.package ]);
  entry = { config, name, ... }: {
    options = {
      from = mkOption { type = reference; description = "The flake reference to be rewritten."; };
      to = mkOption { type = reference; description = "What it is rewritten to."; };
      flake = mkOption { type = types.nullOr types.attrs; default = null; description = "A flake input."; };
      exact = mkOption { type = types.bool; default = true; description = "Exact match."; };
    };
    config = {
      from = lib.mkDefault { type = "indirect"; id = name; };
      to = lib.mkIf (config.flake != null) (lib.mkDefault { type = "path"; path = config.flake.outPath; });
    };
  };
  flake = config.nixpkgs.flake;
in
{
  options = {
    nix.enable = mkOption { type = types.bool; default = true; description = "Nix."; };
    nix.package = mkOption { type = types.package; default = pkgs.nix; description = "Nix."; };
    nix.settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.oneOf [ types.bool types.int types.float types.str types.path types.package (types.listOf (types.oneOf [ types.bool types.int types.str types.path types.package ])) ]);
      };
      default = { };
      description = "nix.conf.";
    };
    nix.channel.enable = mkOption { type = types.bool; default = true; description = "Channels."; };
    nix.nixPath = mkOption {
      type = types.listOf types.str;
      default =
        if cfg.channel.enable then [
          "nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos"
          "nixos-config=/etc/nixos/configuration.nix"
          "/nix/var/nix/profiles/per-user/root/channels"
        ] else [ ];
      description = "NIX_PATH.";
    };
    nix.registry = mkOption { type = types.attrsOf (types.submodule entry); default = { }; description = "The flake registry."; };

    nixpkgs.flake = {
      source = mkOption { type = types.nullOr (types.either types.str types.path); default = null; description = "The nixpkgs source."; };
      setNixPath = mkOption { type = types.bool; default = flake.source != null; description = "Set NIX_PATH."; };
      setFlakeRegistry = mkOption { type = types.bool; default = flake.source != null; description = "Pin the registry."; };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf (flake.source != null) (lib.mkMerge [
      (lib.mkIf flake.setFlakeRegistry {
        nix.registry.nixpkgs.to = lib.mkDefault { type = "path"; path = flake.source; };
      })
      (lib.mkIf flake.setNixPath {
        nix.nixPath = lib.mkDefault ([ "nixpkgs=flake:nixpkgs" ] ++ lib.optional cfg.channel.enable "/nix/var/nix/profiles/per-user/root/channels");
      })
    ]))
    (lib.mkIf cfg.enable {
      environment.etc."nix/registry.json".text = builtins.toJSON {
        version = 2;
        flakes = lib.mapAttrsToList (_: v: { inherit (v) from to exact; }) cfg.registry;
      };
      environment.etc."nix/nix-path".text = lib.concatLines cfg.nixPath;
      # nix.nix renders nix.settings into /etc/nix/nix.conf; here, as JSON.
      environment.etc."nix/nix.conf".text = builtins.toJSON cfg.settings;
    })
  ];
}
