# Stand-in packages: what nixpkgs' package set would provide, and nothing nixpkgs' lib
# provides (that is the real lib). Every package is a real `derivation` whose store path
# depends on its name, its inputs and (for build helpers) its build script, so two
# configurations that differ anywhere a build would see have different store paths, and a
# test can read a derivation's inputs back as attributes. Nothing here is ever built:
# `builder` does not exist.
{ lib, system }:

let
  drv = name: attrs: derivation ({
    inherit name system;
    builder = "/stand-in/not-buildable";
  } // attrs);

  # A package: a derivation plus the attributes nixpkgs gives it (passthru, meta).
  package = name: passthru: drv name { } // passthru;

  # Shells carry `shellPath` (types.shellPackage; nixos/lib/utils.nix' toShellPath).
  shell = name: path: package name { shellPath = path; };

  packages = static:
    let
      self = {
        inherit lib;
        stdenv.hostPlatform = lib.systems.elaborate system;

        # pkgs/build-support/trivial-builders/default.nix
        runCommand = name: env: buildCommand: drv name (env // { inherit buildCommand; });
        writeText = name: text: drv name { inherit text; passAsFile = [ "text" ]; };
        # pkgs/build-support/closure-info.nix
        closureInfo = { rootPaths }: drv "closure-info" { inherit rootPaths; };
        # pkgs/build-support/buildenv/default.nix
        buildEnv = { name, paths, ... }: drv name { inherit paths; };
        # pkgs/build-support/mkshell/default.nix
        mkShell = { packages ? [ ], ... }: drv "nix-shell" { inherit packages; };
        # nixos/lib/make-options-doc/default.nix: the real one renders every option's
        # description, default and example; so does this (forcing them), as JSON.
        nixosOptionsDoc = { options, ... }: {
          optionsJSON = self.writeText "options.json" (builtins.toJSON
            (map (opt: removeAttrs opt [ "declarations" "loc" ]) (lib.optionAttrSetToDocList options)));
        };

        # pkgs/top-level/stage.nix: a static package set; callPackage fills the package's
        # arguments from this set.
        pkgsStatic = packages true;
        callPackage = fn: args:
          let f = if builtins.isFunction fn then fn else import fn; in
          f (builtins.intersectAttrs (builtins.functionArgs f) self // args)
          // { override = more: self.callPackage fn (args // more); };
        # pkgs/build-support/rust/build-rust-package/default.nix
        rustPlatform.buildRustPackage = args: drv "${args.pname}-${args.version}"
          {
            inherit (args) src;
            cargoLock = args.cargoLock.lockFile;
            inherit static;
          } // { inherit (args) meta; };

        # pkgs/pkgs-lib/formats.nix: a JSON value type and a generator writing it to the store.
        formats.json = {}: {
          type =
            let
              value = lib.types.nullOr
                (lib.types.oneOf [
                  lib.types.bool
                  lib.types.int
                  lib.types.float
                  lib.types.str
                  lib.types.path
                  (lib.types.attrsOf value)
                  (lib.types.listOf value)
                ]) // { description = "JSON value"; };
            in
            value;
          generate = name: value: drv name { json = builtins.toJSON value; };
        };

        # pkgs/by-name/ni/nixos-icons: share/icons/hicolor/<n>x<n>/apps/nix-snowflake.png
        nixos-icons = package "nixos-icons-0-unstable-2025-06-28" { };

        bashInteractive = shell "bash-interactive-5.3" "/bin/bash";
        bashInteractiveFHS = shell "bash-interactive-fhs-5.3" "/bin/bash";
        zsh = shell "zsh-5.9" "/bin/zsh";
        fish = shell "fish-4.0" "/bin/fish";
        dash = shell "dash-0.5.12" "/bin/dash";
        xonsh = shell "xonsh-0.19" "/bin/xonsh";
        # pkgs/os-specific/linux/shadow: users-groups' default shell is nologin.
        shadow = shell "shadow-4.17" "/bin/nologin";

        coreutils = package "coreutils-9.7" { };
        util-linux = package "util-linux-2.41" { };
        gnugrep = package "gnugrep-3.12" { };
        docker-client = package "docker-28.3" { };
        # pkgs/by-name/ws/wsl2-ssh-agent (meta.mainProgram = "wsl2-ssh-agent")
        wsl2-ssh-agent = package "wsl2-ssh-agent-0.9.7" { meta.mainProgram = "wsl2-ssh-agent"; };
        # pkgs/os-specific/linux/usbip (linuxPackages.usbip: bin/usbip, bin/usbipd)
        linuxPackages.usbip = package "usbip-6.12.40" { };
        # pkgs/by-name/us/usbutils (lsusb)
        usbutils = package "usbutils-018" { };
        # pkgs/by-name/ku/kmod, pkgs/by-name/ip/iproute2 (ip)
        iproute2 = package "iproute2-6.15" { };
        # pkgs/development/libraries/mesa (hardware.graphics.package), pkgs/by-name/li/libGL
        mesa = package "mesa-25.1" { };
        libGL = package "libGL-1.7" { };
        nix = package "nix-2.31" { };
        systemd = package "systemd-258" { };
        perl = package "perl-5.40" { };
        kmod = package "kmod-34" { };
        linux = package "linux-6.12.40" { };
        linux-firmware = package "linux-firmware-20250808" { };

        nixpkgs-fmt = package "nixpkgs-fmt-1.3.0" { };
        deadnix = package "deadnix-1.3.0" { };
        cargo = package "cargo-1.89" { };
        clippy = package "clippy-1.89" { };
        rustc = package "rustc-1.89" { };
        rustfmt = package "rustfmt-1.89" { };
      };
    in
    self;
in
packages false
