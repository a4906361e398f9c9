# nixos/modules/tasks/network-interfaces.nix, config/networking.nix, config/resolvconf.nix,
# services/networking/{dhcpcd,firewall}.nix, system/boot/resolved.nix: the options the WSL
# module sets or reads, with nixpkgs' types and defaults (resolvconf's default depends on
# whether environment.etc has a resolv.conf entry, which the module relies on).
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
in
{
  options = {
    networking.hostName = mkOption {
      default = config.system.nixos.distroId;
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      description = "The host name.";
    };
    networking.nameservers = mkOption { type = types.listOf types.str; default = [ ]; description = "Name servers."; };
    networking.extraHosts = mkOption { type = types.lines; default = ""; description = "Extra /etc/hosts lines."; };
    networking.dhcpcd.enable = mkOption { type = types.bool; default = true; description = "dhcpcd."; };
    networking.firewall.enable = mkOption { type = types.bool; default = true; description = "The firewall."; };
    networking.resolvconf.enable = mkOption {
      type = types.bool;
      default = !(config.environment.etc ? "resolv.conf");
      description = "resolvconf.";
    };
    services.resolved.enable = mkOption { default = false; type = types.bool; description = "systemd-resolved."; };
  };
}
