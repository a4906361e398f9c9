# The NixOS module, one file per feature. Importing it changes nothing until
# `wsl.enable = true` (checked by nix/checks/side-effects.nix). It does not depend on the
# flake: the flake (and default.nix) add `wsl.package` with lib.mkDefault.
{
  imports = [
    ./wsl-distro.nix
    ./wsl-conf.nix
    ./shell.nix
    ./native-systemd.nix
    ./interop.nix
    ./docker-desktop.nix
    ./gpu.nix
    ./ssh-agent.nix
    ./usbip.nix
    ./keep-alive.nix
    ./start-menu.nix
    ./distribution.nix
    ./rebuild.nix
    ./tarball.nix
  ];
}
