# nixos/modules/system/boot/systemd.nix (with nixos/lib/systemd-unit-options.nix),
# systemd/tmpfiles.nix, systemd/oomd.nix, systemd/sysusers.nix, emergency-mode.nix and
# services/system/userborn.nix: the options the WSL module sets or reads, with nixpkgs'
# types. A unit's options are the ones the module uses, plus the common ones a unit of a
# feature module would set.
{ lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  # nixos/lib/systemd-unit-options.nix: unitOption is a bool, int, str or path, or a list.
  unitOption = types.oneOf [ types.bool types.int types.str types.path (types.listOf (types.oneOf [ types.bool types.int types.str types.path ])) ];
  strList = mkOption { type = types.listOf types.str; default = [ ]; description = "Unit names."; };
  service = {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the unit is generated (false links it to /dev/null)."; };
      description = mkOption { type = types.singleLineStr; default = ""; description = "Description."; };
      wantedBy = strList;
      requiredBy = strList;
      wants = strList;
      requires = strList;
      after = strList;
      before = strList;
      bindsTo = strList;
      partOf = strList;
      conflicts = strList;
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; description = "Packages on PATH."; };
      environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; description = "Environment."; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] settings."; };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] settings."; };
      script = mkOption { type = types.lines; default = ""; description = "ExecStart script."; };
      scriptArgs = mkOption { type = types.str; default = ""; description = "Arguments of the script (systemd specifiers expanded)."; };
      preStart = mkOption { type = types.lines; default = ""; description = "ExecStartPre script."; };
      postStop = mkOption { type = types.lines; default = ""; description = "ExecStopPost script."; };
      restartIfChanged = mkOption { type = types.bool; default = true; description = "Restart on switch."; };
      stopIfChanged = mkOption { type = types.bool; default = true; description = "Stop on switch."; };
    };
  };
in
{
  options = {
    systemd.package = mkOption { default = pkgs.systemd; type = types.package; description = "systemd."; };
    systemd.services = mkOption { default = { }; type = types.attrsOf (types.submodule service); description = "System services."; };
    systemd.targets = mkOption { default = { }; type = types.attrsOf (types.submodule { options = { wants = strList; wantedBy = strList; }; }); description = "Targets."; };
    systemd.user.services = mkOption { default = { }; type = types.attrsOf (types.submodule service); description = "User services."; };
    systemd.enableEmergencyMode = mkOption { default = true; type = types.bool; description = "Emergency mode."; };
    systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d rules."; };
    systemd.oomd.enable = mkOption { type = types.bool; default = true; description = "systemd-oomd."; };
    systemd.sysusers.enable = lib.mkEnableOption "systemd-sysusers";
    services.userborn.enable = lib.mkEnableOption "userborn";
  };
}
