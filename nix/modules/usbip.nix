# USB devices from Windows, through usbipd-win (dorssel/usbipd-win).
#
# `usbipd attach --wsl --busid <id>` on Windows shares a device over USB/IP and attaches it
# inside the distribution by running commands in it as root, bypassing the login shell and
# PATH (WSL's fixed PATH, where NixOS has nothing): those are linked into /bin and /sbin.
# Devices then appear through vhci_hcd, which WSL's kernel has built in, and udev gives them
# their /dev nodes and permissions. The usbip tools are there for attaching by hand, and
# wsl.usbip.autoAttach attaches chosen devices from inside, again whenever they return.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  usbip = pkgs.linuxPackages.usbip;
in
{
  options.wsl.usbip = {
    enable = lib.mkEnableOption "USB devices shared from Windows with usbipd-win (usbip tools, udev, the commands usbipd-win runs)";

    autoAttach = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "[0-9]+-[0-9]+([.][0-9]+)*");
      default = [ ];
      example = [ "4-1" "2-3.1" ];
      description = ''
        Bus IDs (as {command}`usbipd list` on Windows shows them) to attach at boot, and
        again within seconds whenever the device comes back, one
        `nixos-wsl-usbip-attach@<bus id>` service each. The device must be shared on
        Windows once ({command}`usbipd bind --busid <bus id>`, as administrator).
      '';
    };

    host = lib.mkOption {
      type = lib.types.str;
      default = "";
      example = "172.20.144.1";
      description = ''
        The Windows host that serves the devices, for {option}`wsl.usbip.autoAttach`.
        Empty: the default gateway, which is the Windows host in WSL's NAT networking. Set
        it in mirrored networking (`127.0.0.1`) or with a custom network.
      '';
    };
  };

  config = lib.mkIf (cfg.enable && cfg.usbip.enable) {
    environment.systemPackages = [ usbip pkgs.usbutils ];

    # Device nodes and permissions for attached devices (NixOS-WSL's default turns udev off).
    services.udev.enable = true;

    # What usbipd-win runs in the distribution (nix/README.md lists them with the release).
    wsl.links = {
      "/bin/cat" = "${pkgs.coreutils}/bin/cat";
      "/bin/ls" = "${pkgs.coreutils}/bin/ls";
      "/sbin/modprobe" = "${pkgs.kmod}/bin/modprobe";
      "/bin/usbip" = "${usbip}/bin/usbip";
    };

    systemd.services."nixos-wsl-usbip-attach@" = {
      description = "Attach the USB device %i from Windows (usbipd-win)";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      path = [ usbip pkgs.iproute2 pkgs.gnugrep pkgs.coreutils ];
      scriptArgs = "%i";
      # Attached: wait until the device is gone (detached on Windows, unplugged), then
      # attach again; not attachable yet: try again.
      script = ''
        busid=$1
        host=${lib.escapeShellArg cfg.usbip.host}
        while true; do
          if [ -z "$host" ]; then
            host=$(ip -4 route show default | grep -oE 'via [0-9.]+' | cut -d' ' -f2 | head -n1)
          fi
          if [ -n "$host" ] && usbip port 2>/dev/null | grep -qF "usbip://$host:3240/$busid"; then
            sleep 5
          elif [ -n "$host" ] && usbip attach --remote="$host" --busid="$busid"; then
            echo "attached $busid from $host"
          else
            sleep 5
          fi
          [ -n ${lib.escapeShellArg cfg.usbip.host} ] || host=
        done
      '';
      serviceConfig.Restart = "always";
    };

    systemd.targets.multi-user.wants = map (busid: "nixos-wsl-usbip-attach@${busid}.service") cfg.usbip.autoAttach;
  };
}
