# The login shell, users' own shells, and the namespace mode (wsl.nativeSystemd = false).
#
# WSL execs the session user's passwd shell: `-zsh` for `wsl -d NixOS`, `zsh -c <cmd>` for
# `wsl -- <cmd>`. A bare bash or dash run with `-c` never reads NixOS' /etc/set-environment,
# and in the namespace mode root's shell must start systemd first. So every shell a user sets
# the NixOS way (`users.users.<name>.shell = pkgs.zsh;`) reaches /etc/passwd as a per-shell
# link: `<store>/nixos-wsl-shell-zsh/bin/zsh` -> nixos-wsl-shell, with `<store>/.../shell` ->
# the real shell next to it. nixos-wsl-shell reads that link, loads the environment (and in
# the namespace mode starts systemd) and execs the real shell, so `$0` is `-zsh` and `$SHELL`
# names zsh. No wrapper script, no second definition of users.users.<name>.shell: the module
# only adds an `apply` to that option's declaration (the module system merges a declaration
# that brings nothing but `apply`), so nixpkgs' users-groups.nix writes the link to passwd
# with its own `utils.toShellPath`. The link is a store path, not /run/current-system/...:
# /run is a fresh tmpfs at every WSL start, and root's shell runs before any activation.
{ config, lib, pkgs, utils, ... }:

let
  cfg = config.wsl;
  inherit (lib) types;

  # key = value lines, the format nixos-wsl-shell parses.
  settings = {
    user = config.users.users.${cfg.defaultUser}.name;
    systemd = "${config.systemd.package}/lib/systemd/systemd";
    activate = "/nix/var/nix/profiles/system/activate";
    include_path = lib.boolToString cfg.interop.includePath;
    # The one-time welcome on each user's first interactive login (src/welcome.rs).
    welcome = "true";
  } // lib.optionalAttrs (cfg.systemd.timeout != null) {
    inherit (cfg.systemd) timeout;
  };

  # Shells that mean "no login": kept as they are, WSL never runs a session with them.
  noLogin = [ "nologin" "false" "nixos-wsl-shell" ];

  # Whether a user's shell goes through nixos-wsl-shell: root (the namespace mode starts
  # systemd from root's shell) and every normal user (`wsl -u <name>`).
  wraps = user: shell:
    cfg.enable
    && shell != null
    && (user.isNormalUser || user.uid == 0)
    && !lib.elem (baseNameOf (utils.toShellPath shell)) noLogin;

  # The per-shell link: `$out/bin/<name>` -> nixos-wsl-shell (named in passwd), and
  # `$out/shell` -> the real shell, read by nixos-wsl-shell (session::wrapped_shell).
  perShellLink = shell:
    let
      real = utils.toShellPath shell;
      name = baseNameOf real;
    in
    pkgs.runCommand "nixos-wsl-shell-${lib.strings.sanitizeDerivationName name}" { } ''
      mkdir -p "$out/bin"
      ln -s ${cfg.package}/bin/nixos-wsl-shell "$out/bin/"${lib.escapeShellArg name}
      ln -s ${lib.escapeShellArg real} "$out/shell"
    '';

  # Adds to every users.users.<name>: `shell` yields the per-shell link where the user has
  # one, and two internal options keep what the module and its tests need to know.
  userModule = { config, options, ... }: {
    options.shell = lib.mkOption {
      # `shell` is forced first: conflicting definitions must still fail as in NixOS (and
      # then realShell, the first definition, is the merged value).
      apply = shell: builtins.seq shell (
        if config.wsl.shellLink == null then shell
        else "${config.wsl.shellLink}/bin/${baseNameOf (utils.toShellPath config.wsl.realShell)}"
      );
    };
    options.wsl = {
      realShell = lib.mkOption {
        type = types.raw;
        internal = true;
        readOnly = true;
        default = lib.head options.shell.definitions;
        description = ''
          The shell as {option}`users.users.<name>.shell` defines it, before the module
          names its per-shell link in {file}`/etc/passwd` instead.
        '';
      };
      shellLink = lib.mkOption {
        type = types.nullOr types.package;
        internal = true;
        readOnly = true;
        default = if wraps config config.wsl.realShell then perShellLink config.wsl.realShell else null;
        description = "The per-shell link to nixos-wsl-shell that {file}`/etc/passwd` names, if any.";
      };
    };
  };

  isWrapped = user: user.wsl.shellLink != null;
  wrappedUsers = lib.filter isWrapped (lib.attrValues config.users.users);

  # The shells NixOS only sets up when their programs.<shell> module is enabled. nixpkgs'
  # users-groups.nix checks this by comparing users.users.<name>.shell with the package,
  # which now holds the link, so the same check is made here on the real shell.
  shellsNeedingProgram = [ "fish" "xonsh" "zsh" ];
in
{
  options.users.users = lib.mkOption {
    type = types.attrsOf (types.submodule userModule);
  };

  options.wsl.shell = lib.mkOption {
    type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path));
    default = null;
    example = lib.literalExpression "pkgs.zsh";
    description = ''
      Deprecated: set {option}`users.users.<name>.shell` instead, as on any NixOS.
      When set, it is the shell of {option}`wsl.defaultUser`, with a warning.
    '';
  };

  options.wsl.systemd.timeout = lib.mkOption {
    type = types.nullOr types.ints.positive;
    default = null;
    example = 60;
    description = ''
      Seconds nixos-wsl-shell waits for systemd to report that it is up (in WSL's
      systemd mode: for the activation to finish) before it gives up with an error
      and systemd's output. null keeps the shell's built-in default.
    '';
  };

  config = lib.mkIf cfg.enable {
    # chsh, su and some PAM setups only accept shells listed in /etc/shells. The real
    # shells are installed as nixpkgs installs users' shells (users-groups.nix'
    # systemShells, which now sees the links).
    environment.shells = map (user: user.shell) wrappedUsers;
    environment.systemPackages = lib.filter types.shellPackage.check (map (user: user.wsl.realShell) wrappedUsers);

    users.users.${cfg.defaultUser}.shell = lib.mkIf (cfg.shell != null) cfg.shell;
    warnings = lib.optional (cfg.shell != null) ''
      wsl.shell is deprecated. Set users.users.${cfg.defaultUser}.shell instead (the NixOS
      way; nixos-wsl-shell runs every user's own shell), and remove wsl.shell.
    '';

    environment.etc."nixos-wsl.conf".text = ''
      # Generated by the NixOS module (options wsl.*); read by nixos-wsl-shell.
    '' + lib.concatStrings (lib.mapAttrsToList (key: value: "${key} = ${toString value}\n") settings);

    assertions = lib.concatMap
      (user: map
        (name: {
          assertion = !user.ignoreShellProgramCheck -> user.wsl.realShell == pkgs.${name} -> config.programs.${name}.enable;
          message = ''
            users.users.${user.name}.shell is set to ${name}, but programs.${name}.enable is
            not true, so ${name} would start without NixOS' environment. Set
            programs.${name}.enable = true; (or users.users.${user.name}.ignoreShellProgramCheck = true;).
          '';
        })
        shellsNeedingProgram)
      wrappedUsers
    ++ [{
      assertion = cfg.nativeSystemd || isWrapped config.users.users.root;
      message = ''
        users.users.root.shell is ${toString config.users.users.root.shell}, but without
        wsl.nativeSystemd root's shell is what starts systemd: WSL starts every session as
        root. Set users.users.root.shell to a login shell (for example pkgs.bashInteractive),
        or wsl.nativeSystemd = true;.
      '';
    }];
  };
}
