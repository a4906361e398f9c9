# The artifacts `wsl --import` takes: system.build.tarball (the root file system) and
# system.build.installer (that root file system wrapped for a first boot that unpacks it).
#
# A derivation lays out the root file system as it must look before the first
# activation; the crate's tarball tool packs it together with the system closure from the
# build's /nix/store (sorted, fixed mtime, numeric owner root) and checks the result the
# way WSL will read it. No VM, no chroot, no root, and unlike make-system-tarball (which
# ships a nix-path-registration file for the first boot to load) the Nix database is
# loaded at build time, so the store is valid the moment the tarball is unpacked.
{ config, lib, pkgs, utils, ... }:

let
  cfg = config.wsl;
  inherit (config.system.build) toplevel;

  tool = "${cfg.package}/bin/nixos-wsl";

  closure = pkgs.closureInfo { rootPaths = [ toplevel ]; };

  # A minimal /etc/passwd and /etc/group for the first boot. WSL resolves the session
  # user from /etc/passwd before any activation (and falls back to a bare /bin/sh when
  # it finds nothing); the activation later rewrites both files from users.users.
  users = map (name: config.users.users.${name}) [ "root" cfg.defaultUser ];
  gidOf = name: config.users.groups.${name}.gid or null;
  passwd = lib.concatMapStrings
    (user: lib.optionalString (user.uid != null && gidOf user.group != null)
      "${user.name}:x:${toString user.uid}:${toString (gidOf user.group)}:${user.description}:${user.home}:${utils.toShellPath user.shell}\n")
    users;
  group = lib.concatMapStrings
    (name: lib.optionalString (gidOf name != null)
      "${name}:x:${toString (gidOf name)}:${lib.concatStringsSep "," config.users.groups.${name}.members}\n")
    (lib.unique (lib.concatMap (user: [ user.group ] ++ user.extraGroups) users));

  # Everything wsl.links creates at activation, plus /bin/sh, which NixOS' own
  # activation creates from environment.binsh.
  links = cfg.links // { "/bin/sh" = config.environment.binsh; };

  rootfs = pkgs.runCommand "nixos-wsl-rootfs"
    {
      nativeBuildInputs = [ config.nix.package ];
      passAsFile = [ "passwd" "group" ];
      inherit passwd group;
    }
    ''
      root="$NIX_BUILD_TOP/root"
      mkdir -p "$root"/{bin,dev,etc,mnt,proc,run,sys} "$root/nix/store"
      install -d -m 0700 "$root/root"
      install -d -m 1777 "$root/tmp"

      # Read by WSL and by nixos-wsl-shell before the first activation links them.
      install -m 0644 ${config.environment.etc."wsl.conf".source} "$root/etc/wsl.conf"
      install -m 0644 ${config.environment.etc."nixos-wsl.conf".source} "$root/etc/nixos-wsl.conf"
      install -m 0644 "$passwdPath" "$root/etc/passwd"
      install -m 0644 "$groupPath" "$root/etc/group"
      # nixos-rebuild refuses to run on a system without it.
      touch "$root/etc/NIXOS"

      ${lib.concatStrings (lib.mapAttrsToList (path: target: ''
        mkdir -p "$root"${lib.escapeShellArg (dirOf path)}
        ln -s ${lib.escapeShellArg target} "$root"${lib.escapeShellArg path}
      '') links)}

      # The Nix database, so the closure is registered as valid on first boot. The
      # sandbox has no daemon and no root: nix-store opens a store rooted at $root.
      export HOME="$NIX_BUILD_TOP"
      nix-store --load-db --store "$root" --option build-users-group "" < ${closure}/registration
      # Keep only the database: the rest of the state nix-store created refers to paths
      # under $root (gcroots/profiles would point at the build directory, so the
      # garbage collector would no longer see the system profile as a root), and
      # db/reserved is 8 MiB of padding nix recreates on demand.
      find "$root/nix/var/nix" -mindepth 1 -maxdepth 1 ! -name db -exec rm -rf {} +
      rm -f "$root/nix/var/nix/db/reserved"
      mkdir -p "$root/nix/var/nix/gcroots" "$root/nix/var/nix/profiles"
      ln -s /nix/var/nix/profiles "$root/nix/var/nix/gcroots/profiles"

      # The system profile, as nixos-rebuild would leave it: generation 1 is this system.
      ln -s ${toplevel} "$root/nix/var/nix/profiles/system-1-link"
      ln -s system-1-link "$root/nix/var/nix/profiles/system"

      mkdir -p "$out/tarball" "$out/nix-support"
      ${tool} tarball build --source "$root" --store-paths ${closure}/store-paths \
        --mtime 1 --output "$out/tarball/nixos-wsl.tar.gz"
      ${tool} tarball verify "$out/tarball/nixos-wsl.tar.gz"
      echo "file system-tarball $out/tarball/nixos-wsl.tar.gz" > "$out/nix-support/hydra-build-products"
    '';

  installer = pkgs.runCommand "nixos-wsl-installer" { } ''
    mkdir -p "$out/tarball" "$out/nix-support"
    ${tool} tarball installer --rootfs ${rootfs}/tarball/nixos-wsl.tar.gz \
      --installer ${cfg.package}/bin/nixos-wsl-installer \
      --output "$out/tarball/nixos-wsl-installer.tar.gz"
    ${tool} tarball verify "$out/tarball/nixos-wsl-installer.tar.gz"
    echo "file system-tarball $out/tarball/nixos-wsl-installer.tar.gz" > "$out/nix-support/hydra-build-products"
  '';
in
{
  config = lib.mkIf cfg.enable {
    system.build = {
      # `wsl --import <name> <dir> result/tarball/nixos-wsl.tar.gz`
      tarball = rootfs;
      # `wsl --import <name> <dir> result/tarball/nixos-wsl-installer.tar.gz`: no hard
      # links, unpacks the root file system on first boot.
      inherit installer;
    };
  };
}
