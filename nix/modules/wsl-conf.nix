# /etc/wsl.conf: what WSL itself does when it starts the distribution (automount, network
# files, interop, default user, systemd). WSL reads it once per start, before any NixOS
# activation has run, so the tarball builders also copy it into the root file system.
#
# A freeform INI setting: the keys this module depends on are typed options, anything else
# WSL knows (see https://learn.microsoft.com/windows/wsl/wsl-config) can be added as is.
# Our own settings never go here: WSL prints "Unknown key" for keys it does not know and
# stops parsing at a syntax error, so they live in /etc/nixos-wsl.conf (shell.nix).
{ config, lib, ... }:

let
  cfg = config.wsl;
  inherit (lib) types;

  # The default user as users.users defines it. Without wsl.enable the module does not
  # create it, and the defaults below must still evaluate (`nixos-option wsl`, other
  # modules reading config.wsl): then only the attribute name is known.
  user = config.users.users.${cfg.defaultUser} or { name = cfg.defaultUser; uid = null; group = ""; };
  primaryGid = config.users.groups.${user.group}.gid or null;

  # WSL has no null: a key that is not written keeps WSL's own default.
  iniAtom = types.oneOf [ types.bool types.int types.str ];

  section = description: options: lib.mkOption {
    type = types.submodule {
      freeformType = types.attrsOf iniAtom;
      inherit options;
    };
    default = { };
    inherit description;
  };

  # Null leaves a key out. So does `[boot] systemd = false`, WSL's default anyway: Microsoft's
  # distribution validator reads any value there, even false, as on, and then demands an ELF
  # /sbin/init (validate-modern.py), which the namespace mode does not have.
  keep = section: key: value: value != null && !(section == "boot" && key == "systemd" && value == false);
  render = settings: lib.generators.toINI { } (lib.filterAttrs (_: keys: keys != { })
    (lib.mapAttrs (section: lib.filterAttrs (keep section)) settings));
in
{
  options.wsl.wslConf = lib.mkOption {
    default = { };
    example = lib.literalExpression ''
      {
        automount.root = "/";
        interop.appendWindowsPath = false;
        # Not a typed option: written as is.
        boot.initTimeout = 30000;
      }
    '';
    description = ''
      Contents of {file}`/etc/wsl.conf`, one attribute set per INI section. Values may be
      booleans, integers or strings; null leaves a typed key out of the file.
    '';
    type = types.submodule {
      freeformType = types.attrsOf (types.attrsOf iniAtom);
      options = {
        automount = section "How WSL mounts the Windows drives." {
          enabled = lib.mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = "Whether WSL mounts the Windows drives under {option}`wsl.wslConf.automount.root`.";
          };
          root = lib.mkOption {
            type = types.str;
            default = "/mnt/";
            example = "/";
            description = "Directory under which WSL mounts each Windows drive (`C:` at `<root>c`).";
          };
          options = lib.mkOption {
            type = types.commas;
            default =
              if user.uid != null && primaryGid != null
              then "metadata,uid=${toString user.uid},gid=${toString primaryGid}"
              else "metadata";
            defaultText = lib.literalMD ''
              `metadata,uid=<uid>,gid=<gid>` with the uid and primary gid of
              {option}`wsl.defaultUser` (`metadata` if either is null)
            '';
            example = "metadata,umask=22,fmask=11";
            description = "Mount options for the Windows drives (drvfs). Definitions are joined with commas.";
          };
          ldconfig = lib.mkOption {
            type = types.bool;
            default = false;
            example = true;
            description = ''
              Whether WSL adds the Windows GPU libraries to {file}`/etc/ld.so.conf.d` and
              runs {file}`/sbin/ldconfig`. NixOS programs do not read ld.so.conf and NixOS has
              no /sbin/ldconfig, so this stays off.
            '';
          };
          mountFsTab = lib.mkOption {
            type = types.bool;
            default = false;
            example = true;
            description = ''
              Whether WSL mounts {file}`/etc/fstab` itself. Leave it off: systemd mounts
              {option}`fileSystems`, and mounting them twice fails.
            '';
          };
        };

        network = section "Which network files WSL generates." {
          generateHosts = lib.mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = ''
              Whether WSL writes {file}`/etc/hosts` at every start. While it does, NixOS
              does not manage the file and {option}`networking.extraHosts` has no effect.
            '';
          };
          generateResolvConf = lib.mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = ''
              Whether WSL links {file}`/etc/resolv.conf` to its own at every session. While
              it does, NixOS does not manage the file (resolvconf stays off).
            '';
          };
          hostname = lib.mkOption {
            type = types.str;
            default = config.networking.hostName;
            defaultText = lib.literalExpression "config.networking.hostName";
            example = "nixos-wsl";
            description = "Host name WSL gives the distribution.";
          };
        };

        interop = section "Running Windows programs from the distribution." {
          enabled = lib.mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = "Whether Windows executables (`.exe`) can be started from the distribution.";
          };
          appendWindowsPath = lib.mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = ''
              Whether WSL passes the Windows `%PATH%` to the distribution. Whether NixOS
              shells then search it is {option}`wsl.interop.includePath`.
            '';
          };
        };

        user = section "The user WSL starts sessions as." {
          default = lib.mkOption {
            type = types.str;
            default = if cfg.nativeSystemd then user.name else "root";
            defaultText = lib.literalExpression ''
              if config.wsl.nativeSystemd
              then config.users.users.''${config.wsl.defaultUser}.name
              else "root"
            '';
            example = "root";
            description = ''
              Login name WSL starts sessions as. Without {option}`wsl.nativeSystemd` it
              must stay `root`: root's login shell starts systemd and then switches to
              {option}`wsl.defaultUser` itself.
            '';
          };
        };

        boot = section "What WSL does when it starts the distribution." {
          systemd = lib.mkOption {
            type = types.bool;
            default = cfg.nativeSystemd;
            defaultText = lib.literalExpression "config.wsl.nativeSystemd";
            example = true;
            description = "Whether WSL starts systemd itself. Set {option}`wsl.nativeSystemd` instead.";
          };
          command = lib.mkOption {
            type = types.nullOr types.str;
            default = null;
            example = "mount --make-rshared /";
            description = "Command WSL runs as root when the distribution starts; null for none.";
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    environment.etc."wsl.conf".text = render cfg.wslConf;

    # While WSL writes them, the files are WSL's. Defining the resolv.conf entry at all
    # (even disabled) also keeps resolvconf off, which would otherwise overwrite WSL's
    # link. The conditions wrap whole entries: an entry defined under a false condition
    # must not exist, or resolvconf would stay off with nothing managing the file.
    environment.etc.hosts = lib.mkIf cfg.wslConf.network.generateHosts { enable = false; };
    environment.etc."resolv.conf" = lib.mkIf cfg.wslConf.network.generateResolvConf { enable = false; };

    assertions = [
      {
        assertion = cfg.wslConf.boot.systemd == cfg.nativeSystemd;
        message = ''
          wsl.wslConf.boot.systemd is ${lib.boolToString cfg.wslConf.boot.systemd} but
          wsl.nativeSystemd is ${lib.boolToString cfg.nativeSystemd}: the login shell and
          /sbin/init are set up for the mode wsl.nativeSystemd selects. Remove the
          wsl.wslConf.boot.systemd definition and set
          wsl.nativeSystemd = ${lib.boolToString cfg.wslConf.boot.systemd}; instead.
        '';
      }
    ];

    warnings =
      let
        net = cfg.wslConf.network;
        hasNameservers = config.networking.nameservers != [ ];
      in
      lib.optional (!cfg.nativeSystemd && cfg.wslConf.user.default != "root") ''
        wsl.wslConf.user.default is "${cfg.wslConf.user.default}", so WSL bypasses root's
        login shell and nothing starts systemd. Remove that definition (root's shell
        switches to wsl.defaultUser itself), or set wsl.nativeSystemd = true; to let WSL
        start systemd.
      ''
      ++ lib.optional (net.generateResolvConf && config.services.resolved.enable) ''
        services.resolved.enable is set, but WSL generates /etc/resolv.conf. Set
        wsl.wslConf.network.generateResolvConf = false; to let systemd-resolved manage it.
      ''
      ++ lib.optional (net.generateResolvConf && hasNameservers) ''
        networking.nameservers has no effect while WSL generates /etc/resolv.conf. Set
        wsl.wslConf.network.generateResolvConf = false; to use them.
      ''
      ++ lib.optional (!net.generateResolvConf && !hasNameservers && !config.services.resolved.enable) ''
        wsl.wslConf.network.generateResolvConf is false but nothing else writes
        /etc/resolv.conf, so name resolution will fail. Set networking.nameservers, or
        services.resolved.enable = true;.
      ''
      ++ lib.optional (net.generateHosts && config.networking.extraHosts != "") ''
        networking.extraHosts has no effect while WSL generates /etc/hosts. Set
        wsl.wslConf.network.generateHosts = false; to use it.
      '';
  };
}
