# WSL's own systemd mode (wsl.nativeSystemd, WSL >= 0.67.6): WSL execs /sbin/init as PID 1
# with `container=wsl`, polls `systemctl is-system-running | grep -E "running|degraded"`
# through /bin/sh with no PATH, runs `/bin/login -f <user>` once per user, then starts
# sessions as the wsl.conf default user. NixOS cannot boot from a bare systemd there, so
# /sbin/init is nixos-wsl-init, which activates the system first and then execs systemd.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
in
{
  options.wsl.nativeSystemd = lib.mkOption {
    type = lib.types.bool;
    default = true;
    example = false;
    description = ''
      Whether WSL starts systemd itself (`[boot] systemd = true` in
      {file}`/etc/wsl.conf`, WSL 0.67.6 or later), with nixos-wsl-init as
      {file}`/sbin/init` and sessions started directly as {option}`wsl.defaultUser`.
      When false, root's login shell starts systemd in a namespace, which also works on
      older WSL.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.nativeSystemd) {
    # WSL execs the default user's passwd shell directly, with `-c <command>` for
    # `wsl -- <command>`: shell.nix makes every user's passwd shell a per-shell link to
    # nixos-wsl-shell, which loads NixOS' environment first.

    # WSL's readiness poll runs `/bin/sh -c "systemctl ... | grep ..."` with PATH unset.
    # nixpkgs' bash is built without a default PATH; its FHS variant keeps bash's
    # compiled-in one (/usr/local/bin:...:/bin:/sbin:.), which finds the two links below.
    # No wrapper script: /bin/sh stays bash itself.
    environment.binsh = "${pkgs.bashInteractiveFHS}/bin/sh";

    wsl.links = {
      "/sbin/init" = "${cfg.package}/bin/nixos-wsl-init";
      "/bin/systemctl" = "${config.systemd.package}/bin/systemctl";
      "/bin/grep" = "${pkgs.gnugrep}/bin/grep";
    };
  };
}
