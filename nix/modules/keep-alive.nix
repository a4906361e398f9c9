# Keeping the distribution running past WSL's idle timeout.
#
# WSL terminates a distribution some seconds after its last client (a wsl.exe, a terminal
# tab) is gone, whatever runs in it: systemd services and lingering users do not count
# (microsoft/WSL #9667, #11239, #13416). A wsl.exe running on Windows does count (WSL's
# service registers each client's Windows process and starts the countdown only after the
# last one exits: src/windows/service/exe/LxssConsoleManager.cpp, Lifetime.cpp), and a
# Linux process can start one through interop. So the distribution holds itself: a unit
# runs `wsl.exe -d <name> --exec sleep infinity` from the inside and keeps it running; the
# Windows process it starts is a client like a terminal tab. Stopping the unit (or any
# poweroff, `wsl -t`, `wsl --shutdown`) ends it, and WSL's idle timer starts again.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  units = if builtins.isList cfg.keepAlive then cfg.keepAlive else [ ];
  wslExe = "${cfg.wslConf.automount.root}c/Windows/System32/wsl.exe";

  holder = description: {
    inherit description;
    serviceConfig = {
      ExecStart = "${wslExe} -d ${lib.escapeShellArg cfg.keepAliveDistribution} --exec ${pkgs.coreutils}/bin/sleep infinity";
      # Interop can fail while Windows is busy (sleep, update): try again.
      Restart = "on-failure";
      RestartSec = 10;
    };
  };
in
{
  options.wsl = {
    keepAlive = lib.mkOption {
      type = lib.types.either lib.types.bool (lib.types.listOf lib.types.str);
      default = false;
      example = [ "docker.service" "postgresql.service" ];
      description = ''
        Keep the distribution running when no Windows program uses it, which WSL otherwise
        ends after its idle timeout even with services running: `true` always (from boot
        until poweroff), or a list of systemd units to keep it running while any of them is
        active. It holds one Windows {command}`wsl.exe` process (through interop) for as long
        as that lasts.

        The trade-off: while it holds, WSL's virtual machine keeps its memory (up to the
        `memory` limit in {file}`.wslconfig`) and never idles; `wsl -t <name>` and
        `wsl --shutdown` still stop it.
      '';
    };

    keepAliveDistribution = lib.mkOption {
      type = lib.types.str;
      default = cfg.distribution.name;
      defaultText = lib.literalExpression "config.wsl.distribution.name";
      example = "NixOS-work";
      description = ''
        The name under which this distribution is registered in Windows
        ({command}`wsl -l`), for {option}`wsl.keepAlive` (the `wsl.exe -d` it runs). Set it
        when the distribution was installed or imported under another name.
      '';
    };
  };

  config = lib.mkIf (cfg.enable && cfg.keepAlive != false && cfg.keepAlive != [ ]) {
    systemd.services =
      if cfg.keepAlive == true then {
        nixos-wsl-keep-alive = holder "Keep the WSL distribution running" // { wantedBy = [ "multi-user.target" ]; };
      } else
        lib.listToAttrs (map
          (unit: lib.nameValuePair "nixos-wsl-keep-alive-${unit}" (holder "Keep the WSL distribution running while ${unit} is active" // {
            # Started with the unit, stopped with it.
            wantedBy = [ unit ];
            bindsTo = [ unit ];
            after = [ unit ];
          }))
          units);

    assertions = [
      {
        assertion = cfg.wslConf.interop.enabled;
        message = ''
          wsl.keepAlive runs wsl.exe through WSL's interop, which
          wsl.wslConf.interop.enabled = false turns off. Enable interop or drop wsl.keepAlive.
        '';
      }
      {
        assertion = cfg.wslConf.automount.enabled;
        message = ''
          wsl.keepAlive runs ${wslExe}, which is not mounted while
          wsl.wslConf.automount.enabled = false. Enable automount or drop wsl.keepAlive.
        '';
      }
    ] ++ map
      (unit: {
        assertion = builtins.match "[A-Za-z0-9:_.@-]+[.][a-z]+" unit != null;
        message = ''wsl.keepAlive: "${unit}" is not a systemd unit name (for example "docker.service").'';
      })
      units;
  };
}
