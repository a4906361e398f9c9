# nixos/modules/system/etc/etc.nix: environment.etc with nixpkgs' submodule (enable,
# target, text, source, mode, user, group, uid, gid) and its rule that `text` becomes a
# store file `etc-<name>` that `source` names. `system.build.etc` holds every enabled entry
# (target -> source), which is what the activation links into /etc.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  entry = { name, config, options, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the file is generated."; };
      target = mkOption { type = types.str; description = "Name relative to /etc."; };
      text = mkOption { default = null; type = types.nullOr types.lines; description = "Text of the file."; };
      source = mkOption { type = types.path; description = "Path of the source file."; };
      mode = mkOption { type = types.str; default = "symlink"; description = "File mode, or symlink."; };
      uid = mkOption { default = 0; type = types.int; description = "Owner uid."; };
      gid = mkOption { default = 0; type = types.int; description = "Owner gid."; };
      user = mkOption { default = "+${toString config.uid}"; type = types.str; description = "Owner."; };
      group = mkOption { default = "+${toString config.gid}"; type = types.str; description = "Group."; };
    };
    config = {
      target = lib.mkDefault name;
      source = lib.mkIf (config.text != null) (
        let name' = "etc-" + lib.replaceStrings [ "/" ] [ "-" ] name; in
        lib.mkDerivedConfig options.text (pkgs.writeText name')
      );
    };
  };
  enabled = lib.filterAttrs (_: file: file.enable) config.environment.etc;
in
{
  options.environment.etc = mkOption {
    default = { };
    type = types.attrsOf (types.submodule entry);
    description = "Files in /etc.";
  };

  config.system.build.etc = pkgs.runCommand "etc"
    {
      entries = lib.mapAttrsToList (_: file: "${file.target}=${file.source}:${file.mode}") enabled;
    } "";
}
