# nixos/modules/config/users-groups.nix (with nixos/modules/misc/ids.nix for the ids): the
# options the WSL module sets or reads, with nixpkgs' types and defaults, and the parts of
# its implementation the module depends on: a normal user's defaults, root and nobody, the
# default groups, the group members, the users' shells in the system profile, the shell
# program check, and /etc/passwd as the activation's JSON spec with each shell written
# through utils.toShellPath (what update-users-groups.pl puts in the passwd field).
{ config, lib, pkgs, utils, ... }:

let
  inherit (lib) mkOption mkDefault mkIf types;
  cfg = config.users;

  # nixos/modules/misc/ids.nix
  ids = {
    uids = { root = 0; nobody = 65534; };
    gids = { root = 0; wheel = 1; tty = 3; disk = 6; kmem = 9; audio = 17; video = 26; users = 100; nixbld = 30000; nogroup = 65534; };
  };

  userOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the account is created."; };
      name = mkOption { type = types.passwdEntry types.str; description = "The login name."; };
      description = mkOption { type = types.passwdEntry types.str; default = ""; description = "The GECOS field."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The uid."; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "A system user."; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "A real user."; };
      group = mkOption { type = types.str; default = ""; description = "The primary group."; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "Other groups."; };
      home = mkOption { type = types.passwdEntry types.path; default = "/var/empty"; description = "The home directory."; };
      createHome = mkOption { type = types.bool; default = false; description = "Whether to create the home."; };
      useDefaultShell = mkOption { type = types.bool; default = false; description = "Use users.defaultUserShell."; };
      shell = mkOption {
        type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path));
        default = pkgs.shadow;
        description = "The user's shell.";
      };
      ignoreShellProgramCheck = mkOption { type = types.bool; default = false; description = "Skip the programs.<shell>.enable check."; };
      packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Per-user packages."; };
      linger = mkOption { type = types.nullOr types.bool; default = null; description = "Lingering."; };
      hashedPassword = mkOption { type = types.nullOr (types.passwdEntry types.str); default = null; description = "Password hash."; };
    };
    config = lib.mkMerge [
      {
        name = mkDefault name;
        shell = mkIf config.useDefaultShell (mkDefault cfg.defaultUserShell);
      }
      (mkIf config.isNormalUser {
        group = mkDefault "users";
        createHome = mkDefault true;
        home = mkDefault "${cfg.defaultUserHome}/${config.name}";
        useDefaultShell = mkDefault true;
        isSystemUser = mkDefault false;
      })
    ];
  };

  groupOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; description = "The group name."; };
      gid = mkOption { type = types.nullOr types.int; default = null; description = "The gid."; };
      members = mkOption { type = types.listOf (types.passwdEntry types.str); default = [ ]; description = "Members."; };
    };
    config = {
      name = mkDefault name;
      members = lib.mapAttrsToList (_: u: u.name)
        (lib.filterAttrs (_: u: u.enable && lib.elem config.name u.extraGroups) cfg.users);
    };
  };

  enabledUsers = lib.filterAttrs (_: u: u.enable) cfg.users;
  uids = lib.filter (uid: uid != null) (lib.mapAttrsToList (_: u: u.uid) cfg.users);
  groupNames = lib.mapAttrsToList (_: g: g.name) cfg.groups;

  spec = pkgs.writeText "users-groups.json" (builtins.toJSON {
    inherit (cfg) mutableUsers;
    users = lib.mapAttrsToList
      (_: u: {
        inherit (u) name uid group description home createHome isSystemUser;
        shell = utils.toShellPath u.shell;
      })
      enabledUsers;
    groups = lib.attrValues cfg.groups;
  });
in
{
  options.users = {
    mutableUsers = mkOption { type = types.bool; default = true; description = "Mutable users."; };
    defaultUserHome = mkOption { type = types.str; default = "/home"; description = "Parent of normal users' homes."; };
    users = mkOption { type = types.attrsOf (types.submodule userOpts); default = { }; description = "User accounts."; };
    groups = mkOption { type = types.attrsOf (types.submodule groupOpts); default = { }; description = "Groups."; };
  };

  config = {
    users.users = {
      root = {
        uid = ids.uids.root;
        description = "System administrator";
        home = "/root";
        shell = mkDefault cfg.defaultUserShell;
        group = "root";
      };
      nobody = {
        uid = ids.uids.nobody;
        isSystemUser = true;
        description = "Unprivileged account (don't use!)";
        group = "nogroup";
      };
    };
    users.groups = lib.mapAttrs (_: gid: { inherit gid; }) ids.gids;

    # The spec is also kept where the tests can read it (not a nixpkgs attribute).
    system.build.usersGroupsSpec = spec;
    system.activationScripts.users = {
      supportsDryActivation = true;
      text = "perl update-users-groups.pl ${spec}";
    };

    # "Install all the user shells"
    environment.systemPackages = lib.filter types.shellPackage.check (lib.mapAttrsToList (_: u: u.shell) cfg.users);

    assertions = [
      { assertion = lib.length uids == lib.length (lib.unique uids); message = "UIDs and GIDs must be unique!"; }
      {
        assertion = lib.all (u: u.group == "" || lib.elem u.group groupNames) (lib.attrValues cfg.users);
        message = "The following users have a primary group that is undefined";
      }
    ] ++ lib.concatMap
      (user: map
        (shell: {
          assertion = !user.ignoreShellProgramCheck -> user.shell == pkgs.${shell} -> config.programs.${shell}.enable;
          message = "users.users.${user.name}.shell is set to ${shell}, but programs.${shell}.enable is not true.";
        }) [ "fish" "xonsh" "zsh" ])
      (lib.attrValues cfg.users);
  };
}
