# /etc/wsl-distribution.conf: what WSL reads from a modern distribution (`.wsl` file, WSL
# 2.4.4 or later; also `wsl --import` for the shortcut and the terminal profile). At
# registration WSL takes the name (`[oobe] defaultName`, for `--install --from-file` without
# `--name`), the Start-menu icon and the Windows Terminal profile template (both read once,
# at most 1 MiB, from the files the image ships). At the first interactive launch it runs
# `[oobe] command` (as root, through /bin/sh) and then stores `[oobe] defaultUid` as the
# default user (microsoft/WSL src/linux/init/init.cpp; nix/README.md has the details).
#
# The image's /etc/passwd has no entry for that uid: the first activation creates the user,
# as Microsoft's validator expects (it warns when the entry already exists). Until then WSL
# falls back to root, whose shell starts the system. In the namespace mode sessions must start
# as root, so no defaultUid is written.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  dist = cfg.distribution;
  inherit (lib) types;
  json = pkgs.formats.json { };

  # Where Microsoft's validator wants the files (validate-modern.py): icon under
  # /usr/share/wsl or /usr/lib/wsl, profile and OOBE command under /usr/lib/wsl.
  paths = {
    icon = "/usr/share/wsl/nixos.ico";
    profile = "/usr/lib/wsl/terminal-profile.json";
    oobe = "/usr/lib/wsl/oobe";
  };

  uid = (config.users.users.${cfg.defaultUser} or { uid = null; }).uid;

  settings = {
    oobe = { defaultName = dist.name; }
      // lib.optionalAttrs (cfg.nativeSystemd && uid != null) { defaultUid = uid; }
      // lib.optionalAttrs (dist.oobeCommand != null) { command = paths.oobe; };
    shortcut = { enabled = dist.shortcut.enable; icon = paths.icon; };
    windowsterminal = { enabled = dist.windowsTerminal.enable; }
      // lib.optionalAttrs dist.windowsTerminal.enable { profileTemplate = paths.profile; };
  };

  # The NixOS logo from nixpkgs' artwork (nixos-icons: share/icons/hicolor/<n>x<n>/apps),
  # as a Windows icon with the sizes Windows asks for.
  defaultIcon = pkgs.runCommand "nixos.ico" { } ''
    ${cfg.package}/bin/nixos-wsl tarball ico --output "$out" ${lib.concatMapStringsSep " "
      (size: "${pkgs.nixos-icons}/share/icons/hicolor/${size}x${size}/apps/nix-snowflake.png")
      [ "16" "24" "32" "48" "64" "256" ]}
  '';

  # A Windows Terminal scheme in the NixOS logo's blues.
  defaultTerminal = {
    profiles = [{ colorScheme = "NixOS"; }];
    schemes = [{
      name = "NixOS";
      background = "#1B2233";
      foreground = "#E3E8F2";
      cursorColor = "#7EBAE4";
      selectionBackground = "#41598F";
      black = "#1B2233";
      red = "#E06C75";
      green = "#98C379";
      yellow = "#E5C07B";
      blue = "#5277C3";
      purple = "#B48EAD";
      cyan = "#7EBAE4";
      white = "#D8DEE9";
      brightBlack = "#4C566A";
      brightRed = "#EF8A91";
      brightGreen = "#B5D89A";
      brightYellow = "#F0D49B";
      brightBlue = "#7EBAE4";
      brightPurple = "#CBA6C4";
      brightCyan = "#A7D3F0";
      brightWhite = "#FFFFFF";
    }];
  };
in
{
  options.wsl.distribution = {
    name = lib.mkOption {
      type = types.strMatching "[A-Za-z0-9._-]+";
      default = "NixOS";
      example = "NixOS-work";
      description = ''
        The distribution's name when it is installed from the `.wsl` file without
        `--name` (`[oobe] defaultName`).
      '';
    };

    icon = lib.mkOption {
      type = types.path;
      default = defaultIcon;
      defaultText = lib.literalMD "the NixOS logo from `pkgs.nixos-icons`, as a `.ico`";
      example = lib.literalExpression "./my-icon.ico";
      description = ''
        Windows icon (`.ico`, at most 1 MiB) of the Start-menu shortcut and the Windows
        Terminal profile, shipped as {file}`/usr/share/wsl/nixos.ico`.
      '';
    };

    shortcut.enable = lib.mkOption {
      type = types.bool;
      default = true;
      example = false;
      description = "Whether WSL creates a Start-menu shortcut when it installs the image.";
    };

    windowsTerminal = {
      enable = lib.mkOption {
        type = types.bool;
        default = true;
        example = false;
        description = "Whether WSL creates a Windows Terminal profile when it installs the image.";
      };
      profileTemplate = lib.mkOption {
        inherit (json) type;
        default = defaultTerminal;
        defaultText = lib.literalMD "one profile with a `NixOS` colour scheme in the logo's blues";
        example = { profiles = [{ colorScheme = "Campbell"; font.face = "Cascadia Mono"; }]; };
        description = ''
          The Windows Terminal profile template (`{ profiles = [ ... ]; schemes = [ ... ]; }`,
          one profile). WSL sets the profile's name, command line, GUID and icon itself and
          keeps every other key; a `colorScheme` must be built in or defined in `schemes`.
        '';
      };
    };

    oobeCommand = lib.mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression ''pkgs.writeScript "oobe" "#!/bin/sh\necho hello"'';
      description = ''
        A program WSL runs once, as root, at the first interactive launch after installing
        the `.wsl` file (`[oobe] command`; retried until it exits 0). It runs before the
        system is activated, through {file}`/bin/sh` with WSL's default PATH, so it must be
        a static program or a script with an absolute interpreter. Shipped as
        {file}`/usr/lib/wsl/oobe`.
      '';
    };

    settings = lib.mkOption {
      type = types.attrsOf (types.attrsOf (types.oneOf [ types.bool types.int types.str ]));
      readOnly = true;
      default = settings;
      defaultText = lib.literalMD "from the options above";
      description = "The contents of {file}`/etc/wsl-distribution.conf`, as generated.";
    };
  };

  config = lib.mkIf cfg.enable {
    environment.etc."wsl-distribution.conf" = {
      text = lib.generators.toINI { } dist.settings;
      mode = "0644";
    };

    # The files the configuration names, as regular files in the image (Microsoft's
    # validator checks them without following links). WSL reads them only at install time.
    wsl.tarball.extraFiles = {
      ${paths.icon}.source = dist.icon;
    } // lib.optionalAttrs dist.windowsTerminal.enable {
      ${paths.profile} = { source = json.generate "terminal-profile.json" dist.windowsTerminal.profileTemplate; mode = "0640"; };
    } // lib.optionalAttrs (dist.oobeCommand != null) {
      ${paths.oobe} = { source = dist.oobeCommand; mode = "0755"; };
    };

    assertions = [{
      assertion = cfg.nativeSystemd -> uid != null;
      message = ''
        users.users.${cfg.defaultUser}.uid is null, but /etc/wsl-distribution.conf needs the
        default user's uid ([oobe] defaultUid). Set users.users.${cfg.defaultUser}.uid = 1000;.
      '';
    }];
    warnings = lib.optional (cfg.nativeSystemd && uid != null && uid != 1000) ''
      users.users.${cfg.defaultUser}.uid is ${toString uid}: /etc/wsl-distribution.conf sets
      [oobe] defaultUid = ${toString uid}, and Microsoft's distribution rules expect 1000.
      Set users.users.${cfg.defaultUser}.uid = 1000; unless you need another uid.
    '';
  };
}
