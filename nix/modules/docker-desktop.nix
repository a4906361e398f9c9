# Docker Desktop's WSL integration. Docker Desktop sets itself up in the distribution from
# Windows, as root and bypassing the login shell (`wsl.exe -d <distro> -u root -e ...`,
# and `-e sh -c 'mkdir -p ~/.docker ...'`), so the commands it calls must be found in WSL's
# fixed PATH (/usr/local/bin:/bin:/usr/bin and friends), where NixOS has nothing. It runs
# its own proxy for the socket; nothing else needs to run in the distribution.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
in
{
  options.wsl.docker-desktop.enable = lib.mkEnableOption "the Docker Desktop integration (Docker Desktop itself is installed on Windows)";

  config = lib.mkIf (cfg.enable && cfg.docker-desktop.enable) {
    environment.systemPackages = [ pkgs.docker-client ];

    # Access to the socket Docker Desktop's proxy creates.
    users.groups.docker.members = [ config.users.users.${cfg.defaultUser}.name ];

    # What Docker Desktop runs with `wsl.exe -e` (nix/README.md lists the release that
    # needs each one): whoami since 4.45 without a shell, install and mv since 4.80.
    wsl.links = lib.genAttrs [ "/bin/cat" "/bin/ls" "/bin/mkdir" "/bin/whoami" "/bin/install" "/bin/mv" ]
      (path: "${pkgs.coreutils}/bin/${baseNameOf path}")
    // lib.genAttrs [ "/bin/groupadd" "/bin/usermod" ]
      (path: "${pkgs.shadow}/bin/${baseNameOf path}");
  };
}
