# The base of the distribution: the options every other file of this module reads
# (enable, defaultUser, package, links), the settings that make NixOS behave like a
# container inside WSL's VM, and the few files outside the Nix store that WSL's own
# tooling expects.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  inherit (lib) types;

  # `wsl.links`, rendered for the activation: replace each link atomically (a rename, as
  # NixOS does for /bin/sh), then remove the links an earlier generation created that this
  # one no longer wants, recorded in a manifest next to NixOS' own state.
  linksManifest = pkgs.writeText "nixos-wsl-links" (lib.concatLines (lib.attrNames cfg.links));
  linkCommands = lib.concatStrings (lib.mapAttrsToList
    (path: target: ''
      mkdir -p ${lib.escapeShellArg (dirOf path)}
      ln -sfn ${lib.escapeShellArg target} ${lib.escapeShellArg "${path}.tmp"}
      mv -fT ${lib.escapeShellArg "${path}.tmp"} ${lib.escapeShellArg path}
    '')
    cfg.links);

  # Scripts and editors' remote servers call `wslpath` by name; /bin is not on NixOS'
  # PATH, so the link also goes into the system profile.
  wslpath = pkgs.runCommand "wslpath" { } ''
    mkdir -p $out/bin
    ln -s /init $out/bin/wslpath
  '';
in
{
  options.wsl = {
    enable = lib.mkEnableOption "NixOS as a WSL distribution";

    defaultUser = lib.mkOption {
      type = types.str;
      default = "nixos";
      example = "alice";
      description = ''
        Attribute name in {option}`users.users` of the user WSL sessions run as. The
        module creates it as a normal user with uid 1000 in the `wheel` group and turns
        lingering on, so that `systemctl --user` works in every session. The login name
        written to {file}`/etc/wsl.conf` and {file}`/etc/nixos-wsl.conf` is that user's
        {option}`users.users.<name>.name`, read when the system is built.
      '';
    };

    package = lib.mkPackageOption pkgs "nixos-wsl"
      {
        default = null;
        example = "nixos-wsl.packages.x86_64-linux.default";
        extraDescription = ''
          It provides nixos-wsl-shell, nixos-wsl-installer, nixos-wsl-init and the
          tarball tool, and must be statically linked. The flake's
          `nixosModules.default` and the repository's default.nix set it with
          `lib.mkDefault`, so only set it to use a different build.
        '';
      } // {
      defaultText = lib.literalMD "the static package of the flake (or default.nix) the module was imported from";
    };

    extraBin = lib.mkOption {
      type = types.attrsOf (types.either types.package types.path);
      default = { };
      example = lib.literalExpression ''
        {
          # usbipd-win up to 5.1 runs /sbin/modprobe, /bin/ls and /bin/cat.
          ls = "''${pkgs.coreutils}/bin/ls";
          modprobe = "''${pkgs.kmod}/bin/modprobe";
        }
      '';
      description = ''
        More programs to link into {file}`/bin` for tools that call them by absolute path
        or with WSL's fixed PATH (`wsl.exe -e`): name in {file}`/bin`, then the program.
        They are created like the module's own links (in the image, and by every
        activation, which also removes links an earlier generation had and this one no
        longer has).
      '';
    };

    links = lib.mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { "/bin/mount" = "/nix/store/...-util-linux/bin/mount"; };
      internal = true;
      description = ''
        Symlinks outside the Nix store that WSL or Windows-side tools use without a PATH:
        absolute link path, then target. They are created in the root file system when
        the tarball is built (for the first boot) and by every activation; links an
        earlier generation created and this one no longer lists are removed.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # WSL brings its own kernel, initrd and boot loader: NixOS builds none of them. In
    # nixpkgs 25.11 the toplevel writes boot.json (bootspec) naming the kernel whenever
    # bootspec is on and the system is not a container, whatever boot.kernel.enable says
    # (top-level.nix, bootspec.nix), so bootspec goes too. boot.isContainer would also do
    # it, but forces udev off and more that a WSL system keeps. checks/no-kernel.nix
    # proves the closure has no kernel, initrd or firmware.
    boot = {
      initrd.enable = false;
      kernel.enable = false;
      loader.grub.enable = false;
      modprobeConfig.enable = false;
      bootspec.enable = false;
    };
    # Without a boot loader switch-to-configuration would warn on every switch.
    system.build.installBootLoader = "${pkgs.coreutils}/bin/true";

    # WSL has no virtual consoles for gettys to run on, and nobody could answer an
    # emergency shell: a failed mount must not stop the boot waiting for one.
    console.enable = false;
    systemd.enableEmergencyMode = false;
    systemd.services = {
      "getty@".enable = false;
      "autovt@".enable = false;
      "serial-getty@".enable = false;
    };

    # Hardware, power and the network belong to the host: WSL configures the interface
    # and DNS, udev would only pull in ~300 MB of firmware, and systemd-oomd needs memory
    # pressure information WSL does not provide. What users may still want (udev for
    # usbip, a firewall, systemd-resolved) stays mkDefault.
    services.udev.enable = lib.mkDefault false;
    networking.dhcpcd.enable = false;
    networking.firewall.enable = lib.mkDefault false;
    services.resolved.enable = lib.mkDefault false;
    powerManagement.enable = false;
    systemd.oomd.enable = lib.mkDefault false;

    users.users.${cfg.defaultUser} = {
      isNormalUser = true;
      uid = lib.mkDefault 1000;
      extraGroups = [ "wheel" ];
      # The user's systemd instance runs from boot on, so `systemctl --user` works in every
      # session, including the first command of a cold start.
      linger = lib.mkDefault true;
    };
    # WSL calls initgroups(3) for root and fails ("initgroups failed 5") when root is in
    # no group at all.
    users.users.root.extraGroups = [ "root" ];

    # The default user has no password unless one is configured.
    security.sudo.wheelNeedsPassword = lib.mkDefault false;

    # WSLg bind-mounts its X11 socket directory read-only onto /tmp/.X11-unix. This rule
    # sorts before systemd's x11.conf (which would clean the directory) and only creates
    # a link when something, such as a tmpfs on /tmp, hid that mount.
    systemd.tmpfiles.rules = [ "L /tmp/.X11-unix - - - - /mnt/wslg/.X11-unix" ];

    # Every program WSL runs inside the distribution by absolute path (microsoft/WSL
    # src/linux/init: init.cpp, config.cpp, drvfs.cpp), where NixOS has nothing. /bin/sh
    # is NixOS' own (environment.binsh). nix/README.md lists who calls each one.
    wsl.links = {
      # Mounting the Windows drives, `mount -a`, and the generated wslg.service.
      "/bin/mount" = "${pkgs.util-linux}/bin/mount";
      # The generated wsl-mnt-guard.service (WSL >= 2.9.8): without it the unit fails
      # (203/EXEC) and every `nixos-rebuild switch` exits 4.
      "/bin/true" = "${pkgs.coreutils}/bin/true";
      # `login -f <user>` opens the logind session in WSL's systemd mode.
      "/bin/login" = "${pkgs.shadow}/bin/login";
      # WSL's multi-call /init dispatches on argv[0] (WSL recreates this one at start too).
      "/bin/wslpath" = "/init";
      # bash.exe on Windows, scripts written for other distributions, Microsoft's
      # distribution validator.
      "/bin/bash" = "${pkgs.bashInteractive}/bin/bash";
      # Recovery from Windows with nothing of the system working but the static admin CLI:
      # `wsl -d NixOS -u root -e /bin/nixos-wsl boot --rollback`.
      "/bin/nixos-wsl" = "${cfg.package}/bin/nixos-wsl";
    } // lib.mapAttrs' (name: program: lib.nameValuePair "/bin/${name}" (toString program)) cfg.extraBin;

    environment.systemPackages = [ wslpath ];

    assertions = lib.mapAttrsToList
      (name: _: {
        assertion = builtins.match "[^/\t\n]+" name != null && name != "." && name != "..";
        message = ''
          wsl.extraBin."${name}" is not a file name in /bin. Use the bare name, for example
          wsl.extraBin.cat = "''${pkgs.coreutils}/bin/cat";.
        '';
      })
      cfg.extraBin;

    system.activationScripts.nixos-wsl-links = {
      deps = [ ];
      text = ''
        ${linkCommands}
        mkdir -p /var/lib/nixos-wsl
        if [ -f /var/lib/nixos-wsl/links ]; then
          grep -vxF -f ${linksManifest} /var/lib/nixos-wsl/links | while IFS= read -r stale; do
            if [ -L "$stale" ]; then rm -f "$stale"; fi
          done
        fi
        cp ${linksManifest} /var/lib/nixos-wsl/links
      '';
    };
  };
}
