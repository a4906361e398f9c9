# The images: system.build.tarball (the root file system), system.build.installer (that root
# file system wrapped for a first boot that unpacks it; `wsl --import`) and system.build.wsl
# (the same as a `.wsl` file, which WSL 2.4.4 and later installs by double-click).
#
# The root file system is laid out by `nixos-wsl tarball rootfs` from a spec this module
# writes (a plain list of files, links and the system closure, below), the same program CI
# runs on a small real Nix store: the layout, the Nix database loaded from closureInfo's
# registration (so the store is valid the moment the tarball is unpacked), the system
# profile, then the reproducible tarball with the closure. No VM, no chroot, no root.
{ config, lib, pkgs, utils, ... }:

let
  cfg = config.wsl;
  inherit (lib) types;
  inherit (config.system.build) toplevel;

  tool = "${cfg.package}/bin/nixos-wsl";

  closure = pkgs.closureInfo { rootPaths = [ toplevel ]; };

  # The first-boot /etc/passwd, /etc/group and /etc/shadow: root only. WSL resolves the
  # session user from /etc/passwd before any activation (falling back to root); the first
  # activation writes all three from users.users, and creates the default user then, which
  # is what Microsoft's rules for `.wsl` files expect ([oobe] defaultUid must not exist yet).
  root = config.users.users.root;
  passwd = pkgs.writeText "passwd" "root:x:0:0:${root.description}:${root.home}:${utils.toShellPath root.shell}\n";
  group = pkgs.writeText "group" "root:x:0:\n";
  shadow = pkgs.writeText "shadow" "root:!:1::::::\n";
  nixosMarker = pkgs.writeText "NIXOS" "";

  # (Without wsl.enable there are no such files, and wsl.tarball.files must still be readable.)
  etc = name: (config.environment.etc.${name} or { source = null; }).source;

  # /etc/nixos: the user's directory, or the generated configuration.
  nixosConfig =
    if cfg.tarball.configPath != null then cfg.tarball.configPath
    else
      pkgs.runCommand "etc-nixos" { } (''
        mkdir -p "$out"
      '' + lib.concatStrings (lib.mapAttrsToList
        (name: text: ''
          cp ${pkgs.writeText name text} "$out/"${lib.escapeShellArg name}
        '')
        cfg.tarball.configuration));

  ownFiles = lib.mapAttrs (_: file: { mode = "0644"; uid = 0; gid = 0; } // file) {
    "/etc/wsl.conf".source = etc "wsl.conf";
    "/etc/nixos-wsl.conf".source = etc "nixos-wsl.conf";
    "/etc/wsl-distribution.conf".source = etc "wsl-distribution.conf";
    "/etc/passwd".source = passwd;
    "/etc/group".source = group;
    "/etc/shadow" = { source = shadow; mode = "0600"; };
    # nixos-rebuild refuses to run on a system without it.
    "/etc/NIXOS".source = nixosMarker;
  };

  # Everything wsl.links creates at activation, plus /bin/sh, which NixOS' own activation
  # creates from environment.binsh.
  links = cfg.links // { "/bin/sh" = config.environment.binsh; };

  # The spec `nixos-wsl tarball rootfs` reads: one entry a line, fields separated by tabs.
  spec = lib.concatLines (
    [
      "closure\t${closure}"
      "nix-store\t${config.nix.package}/bin/nix-store"
      "system\t${toplevel}"
      "tree\t/etc/nixos\t${nixosConfig}"
    ]
    ++ lib.mapAttrsToList (path: file: "file\t${path}\t${file.mode}\t${toString file.uid}\t${toString file.gid}\t${file.source}") cfg.tarball.files
    ++ lib.mapAttrsToList (path: target: "link\t${path}\t${target}") links
  );

  products = path: ''
    mkdir -p "$out/nix-support"
    echo "file system-tarball $out/${path}" > "$out/nix-support/hydra-build-products"
  '';

  rootfs = pkgs.runCommand "nixos-wsl-rootfs" { inherit spec; passAsFile = [ "spec" ]; } (''
    mkdir -p "$out/tarball"
    export HOME="$NIX_BUILD_TOP"
    ${tool} tarball rootfs --spec "$specPath" --work "$NIX_BUILD_TOP/root" --mtime 1 \
      --output "$out/tarball/nixos-wsl.tar.gz"
  '' + products "tarball/nixos-wsl.tar.gz");

  installer = pkgs.runCommand "nixos-wsl-installer" { } (''
    mkdir -p "$out/tarball"
    ${tool} tarball installer --rootfs ${rootfs}/tarball/nixos-wsl.tar.gz \
      --installer ${cfg.package}/bin/nixos-wsl-installer \
      --output "$out/tarball/nixos-wsl-installer.tar.gz"
    ${tool} tarball verify --arch ${arch} "$out/tarball/nixos-wsl-installer.tar.gz"
  '' + products "tarball/nixos-wsl-installer.tar.gz");

  arch = config.nixpkgs.hostPlatform.parsed.cpu.name;

  # The installer tarball is what a `.wsl` file holds; the name tells WSL (and Windows'
  # double-click) what it is. Checked against every one of Microsoft's rules, with no
  # warning allowed.
  wsl = pkgs.runCommand "nixos-wsl-wsl" { } (''
    mkdir -p "$out"
    cp ${installer}/tarball/nixos-wsl-installer.tar.gz "$out/nixos.wsl"
    ${tool} tarball verify --modern --strict --arch ${arch} "$out/nixos.wsl"
  '' + products "nixos.wsl");

  extraFile = {
    options = {
      source = lib.mkOption {
        type = types.path;
        example = lib.literalExpression "./gitconfig";
        description = "The file's contents.";
      };
      mode = lib.mkOption {
        type = types.strMatching "0?[0-7]{3,4}";
        default = "0644";
        example = "0600";
        description = "Its mode.";
      };
      uid = lib.mkOption {
        type = types.ints.unsigned;
        default = 0;
        example = 1000;
        description = "Its owner (a number: the image is built before any user exists).";
      };
      gid = lib.mkOption {
        type = types.ints.unsigned;
        default = 0;
        example = 100;
        description = "Its group (a number).";
      };
    };
  };
in
{
  options.wsl.tarball.files = lib.mkOption {
    type = types.attrsOf types.raw;
    readOnly = true;
    internal = true;
    default = ownFiles // cfg.tarball.extraFiles;
    description = "Every file the root file system gets besides the closure and the links.";
  };

  options.wsl.tarball.extraFiles = lib.mkOption {
    type = types.attrsOf (types.submodule extraFile);
    default = { };
    example = lib.literalExpression ''
      {
        "/home/nixos/.gitconfig" = { source = ./gitconfig; uid = 1000; gid = 100; };
        "/usr/local/share/ca-certificates/corp.crt".source = ./corp.crt;
      }
    '';
    description = ''
      Files the images carry besides the system (dotfiles, certificates): absolute path in
      the image, then the file. Directories that do not exist are created root-owned.
    '';
  };

  config = lib.mkIf cfg.enable {
    assertions = lib.mapAttrsToList
      (path: _: {
        assertion = builtins.match "/[^\t\n]*" path != null && !lib.hasInfix "/../" "${path}/";
        message = ''
          wsl.tarball.extraFiles."${path}" is not an absolute path without "..", tabs or
          newlines. Name the file by its absolute path in the image.
        '';
      })
      cfg.tarball.extraFiles;

    system.build = {
      # `wsl --import <name> <dir> result/tarball/nixos-wsl.tar.gz` (hard links included:
      # import it only where they are supported, else use the installer)
      tarball = rootfs;
      # `wsl --import <name> <dir> result/tarball/nixos-wsl-installer.tar.gz`
      inherit installer;
      # double-click result/nixos.wsl, or `wsl --install --from-file result/nixos.wsl`
      inherit wsl;
    };
  };
}
