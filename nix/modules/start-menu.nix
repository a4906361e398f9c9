# Start menu launchers for GUI programs. WSLg scans /usr/share/applications and
# /usr/local/share/applications (with the icons next to them) shortly after the
# distribution starts and creates a Windows start menu entry for each .desktop file;
# NixOS keeps both in profiles instead. The activation copies the system profile's into
# /usr/share and the default user's per-user profile's (users.users.<name>.packages,
# home-manager with useUserPackages) into /usr/local/share. Two targets instead of one
# merged tree, because profiles link whole directories into the store and merging a
# second profile into such a link would write into the store.
{ config, lib, ... }:

let
  cfg = config.wsl;
  copies = {
    "/usr/share" = "$systemConfig/sw/share";
    "/usr/local/share" = "/etc/profiles/per-user/${config.users.users.${cfg.defaultUser}.name}/share";
  };
in
{
  options.wsl.startMenuLaunchers = lib.mkEnableOption "start menu launchers for the GUI programs in the system profile and the default user's profile";

  config = lib.mkIf (cfg.enable && cfg.startMenuLaunchers) {
    system.activationScripts.nixos-wsl-start-menu = {
      deps = [ ];
      # Each copy is built next to the old one and swapped in, so WSLg never reads a
      # half-filled directory. Links into the store stay links: cheap, and what WSLg reads.
      text = lib.concatStrings (lib.mapAttrsToList
        (target: source: ''
          for dir in applications icons; do
            new=${target}/.$dir.new
            rm -rf "$new"
            if [ -d "${source}/$dir" ]; then
              mkdir -p "$new"
              cp -R --no-preserve=ownership "${source}/$dir/." "$new/"
            fi
            rm -rf "${target}/$dir"
            if [ -d "$new" ]; then mv "$new" "${target}/$dir"; fi
          done
        '')
        copies);
    };
  };
}
