# nixos/modules/config/shells-environment.nix, nixos/modules/config/system-path.nix,
# nixos/modules/programs/shadow.nix (users.defaultUserShell) and the programs.<shell>
# modules (nixos/modules/programs/{bash/bash.nix,zsh/zsh.nix,fish.nix,xonsh.nix}): the
# options the WSL module sets or reads, with nixpkgs' types, and what they generate that the
# tests look at: /etc/shells (through utils.toShellPath), /etc/set-environment with
# environment.extraInit, and the system profile with every system package.
{ config, lib, pkgs, utils, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.environment;
  program = name: {
    enable = lib.mkEnableOption name;
  };
in
{
  options = {
    environment = {
      systemPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the system profile."; };
      shells = mkOption { type = types.listOf (types.either types.shellPackage types.path); default = [ ]; description = "Permissible login shells."; };
      binsh = mkOption { type = types.path; default = "${config.system.build.binsh}/bin/sh"; description = "The shell linked as /bin/sh."; };
      extraInit = mkOption { type = types.lines; default = ""; description = "Shell script code called during global environment initialisation."; };
      variables = mkOption { type = types.attrsOf (types.oneOf [ (types.listOf (types.oneOf [ types.int types.str types.path ])) types.int types.str types.path ]); default = { }; description = "Global environment variables."; };
    };
    users.defaultUserShell = mkOption {
      type = types.either types.path types.shellPackage;
      description = "The shell of users with useDefaultShell.";
    };
    programs = {
      zsh = program "zsh";
      fish = program "fish";
      xonsh = program "xonsh";
    };
  };

  config = lib.mkMerge [
    {
      # programs/bash/bash.nix
      users.defaultUserShell = lib.mkDefault pkgs.bashInteractive;
      system.build.binsh = pkgs.bashInteractive;
      environment.shells = [ "/run/current-system/sw/bin/sh" "/run/current-system/sw/bin/bash" ];
      environment.etc.shells.text = lib.concatMapStrings (shell: "${utils.toShellPath shell}\n") cfg.shells;
      environment.etc.set-environment.text = cfg.extraInit;
      system.path = pkgs.buildEnv { name = "system-path"; paths = cfg.systemPackages; };
    }
    (lib.mkIf config.programs.zsh.enable {
      environment.systemPackages = [ pkgs.zsh ];
      environment.shells = [ "/run/current-system/sw/bin/zsh" "${pkgs.zsh}/bin/zsh" ];
    })
    (lib.mkIf config.programs.fish.enable {
      environment.systemPackages = [ pkgs.fish ];
      environment.shells = [ "/run/current-system/sw/bin/fish" "${pkgs.fish}/bin/fish" ];
    })
  ];
}
