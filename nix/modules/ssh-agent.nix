# The Windows OpenSSH agent for ssh in NixOS: nixpkgs' wsl2-ssh-agent (mame/wsl2-ssh-agent)
# listens on a Unix socket and relays each request through one long-running powershell.exe
# to Windows' \\.\pipe\openssh-ssh-agent; keys stay in Windows (and in 1Password, KeePassXC,
# gpg4win or whatever serves that pipe).
#
# It runs as a user service in every user's systemd manager (the default user lingers, so it
# is up before the first session), on upstream's default socket path, and every session (login
# or `-c`, in both modes) gets SSH_AUTH_SOCK from /etc/set-environment, which nixos-wsl-shell
# loads for every launch. An agent forwarded into the session (ssh -A) is kept.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  socket = "$HOME/.ssh/wsl2-ssh-agent.sock";
in
{
  options.wsl.sshAgent = {
    enable = lib.mkEnableOption ''
      the Windows OpenSSH agent as {env}`SSH_AUTH_SOCK` in every session, bridged by
      {command}`wsl2-ssh-agent` (Windows' "OpenSSH Authentication Agent" service must be
      running)
    '';

    package = lib.mkPackageOption pkgs "wsl2-ssh-agent" {
      example = "wsl2-ssh-agent.overrideAttrs { patches = [ ./my-fix.patch ]; }";
    };

    powershell = lib.mkOption {
      type = lib.types.str;
      default = "${cfg.wslConf.automount.root}c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe";
      defaultText = lib.literalExpression ''"''${config.wsl.wslConf.automount.root}c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"'';
      example = "/mnt/d/Windows/System32/WindowsPowerShell/v1.0/powershell.exe";
      description = ''
        The Windows PowerShell the bridge runs, through WSL's interop. A user service has no
        Windows {env}`PATH`, so it is named here: change it when Windows is not on `C:`.
      '';
    };
  };

  config = lib.mkIf (cfg.enable && cfg.sshAgent.enable) {
    systemd.user.services.wsl2-ssh-agent = {
      description = "Bridge from SSH_AUTH_SOCK to the Windows OpenSSH agent";
      wantedBy = [ "default.target" ];
      serviceConfig = {
        # The socket where SSH_AUTH_SOCK points (%h: the user's home); upstream's default.
        ExecStartPre = "${pkgs.coreutils}/bin/mkdir -p -m 0700 %h/.ssh";
        ExecStart = "${lib.getExe cfg.sshAgent.package} --foreground --socket=%h/.ssh/wsl2-ssh-agent.sock --powershell-path=${lib.escapeShellArg cfg.sshAgent.powershell}";
        Restart = "on-failure";
        RestartSec = 2;
      };
    };

    # Plain assignments and a test: nixos-wsl-shell's fast path evaluates them without a shell.
    environment.extraInit = ''
      if [ -z "''${SSH_AUTH_SOCK-}" ]; then
        export SSH_AUTH_SOCK="${socket}"
      fi
    '';
  };
}
