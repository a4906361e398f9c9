# The remaining options the WSL module sets or reads, each with nixpkgs' type and default:
#   console.enable                        nixos/modules/config/console.nix
#   powerManagement.enable                nixos/modules/config/power-management.nix
#   services.udev.enable                  nixos/modules/services/hardware/udev.nix
#   security.sudo.{enable,wheelNeedsPassword}  nixos/modules/security/sudo.nix
#   nixpkgs.hostPlatform                  nixos/modules/misc/nixpkgs.nix
#   boot.binfmt.registrations             nixos/modules/system/boot/binfmt.nix
#   hardware.graphics.{enable,extraPackages}   nixos/modules/hardware/graphics.nix (and its
#                                         implementation: /run/opengl-driver links to a
#                                         buildEnv of mesa, libGL and extraPackages; nixpkgs
#                                         writes that rule through systemd.tmpfiles.settings)
#   system.stateVersion, system.nixos.*   nixos/modules/misc/version.nix
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  registration = {
    options = {
      recognitionType = mkOption { default = "magic"; type = types.enum [ "magic" "extension" ]; description = "Magic or extension."; };
      offset = mkOption { default = null; type = types.nullOr types.int; description = "Magic offset."; };
      magicOrExtension = mkOption { type = types.str; description = "Magic bytes or extension."; };
      mask = mkOption { default = null; type = types.nullOr types.str; description = "Magic mask."; };
      interpreter = mkOption { type = types.either types.path types.str; description = "Interpreter."; };
      preserveArgvZero = mkOption { default = false; type = types.bool; description = "P flag."; };
      openBinary = mkOption { default = config.boot.binfmt.registrations.matchCredentials or false; type = types.bool; description = "O flag."; };
      matchCredentials = mkOption { default = false; type = types.bool; description = "C flag."; };
      fixBinary = mkOption { default = false; type = types.bool; description = "F flag."; };
      wrapInterpreterInShell = mkOption { default = true; type = types.bool; description = "Wrap in a shell."; };
    };
  };
in
{
  options = {
    console.enable = mkOption { type = types.bool; default = true; description = "The virtual console."; };
    powerManagement.enable = mkOption { type = types.bool; default = true; description = "Power management."; };
    services.udev.enable = mkOption { type = types.bool; default = true; description = "udev."; };
    security.sudo.enable = mkOption { type = types.bool; default = true; description = "sudo."; };
    security.sudo.wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "wheel needs a password."; };

    nixpkgs.hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      apply = lib.systems.elaborate;
      description = "The platform the system runs on.";
    };
    boot.binfmt.registrations = mkOption { default = { }; type = types.attrsOf (types.submodule registration); description = "binfmt_misc registrations."; };
    boot.binfmt.emulatedSystems = mkOption { default = [ ]; type = types.listOf types.str; description = "Emulated systems."; };

    hardware.graphics.enable = mkOption { type = types.bool; default = false; description = "Graphics drivers."; };
    hardware.graphics.extraPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Extra driver packages."; };

    system.stateVersion = mkOption { type = types.str; default = lib.trivial.release; description = "The NixOS release of the first install."; };
    system.nixos.release = mkOption { readOnly = true; type = types.str; default = lib.trivial.release; description = "The NixOS release."; };
    system.nixos.distroId = mkOption { internal = true; type = types.str; default = "nixos"; description = "The distribution id."; };
  };

  config = lib.mkIf config.hardware.graphics.enable {
    systemd.tmpfiles.rules = [
      "L+ /run/opengl-driver - - - - ${pkgs.buildEnv { name = "graphics-drivers"; paths = [ pkgs.mesa pkgs.libGL ] ++ config.hardware.graphics.extraPackages; }}"
    ];
  };
}
