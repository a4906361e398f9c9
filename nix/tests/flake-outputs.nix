# The outputs of flake.nix and default.nix, evaluated for real: the real nixpkgs lib, and a
# stand-in only for nixpkgs' packages and NixOS modules (./stub-nixpkgs, ./eval). Evaluate
# with `nix-instantiate --eval --strict --json` (NIXOS_WSL_NIXPKGS_LIB set, as
# scripts/check-nix does): the result is a list of "PASS <name>" / "FAIL <name>" lines.
let
  stub = import ./stub-nixpkgs/stub.nix;
  inherit (stub) lib;
  systems = [ "x86_64-linux" "aarch64-linux" ];
  all = builtins.all;
  hasAll = names: attrs: all (name: attrs ? ${name}) names;
  pathOf = drv: drv.outPath or null;
  # Nix before 2.12 refuses to match against a string that names store paths.
  contains = needle: text: lib.hasInfix (builtins.unsafeDiscardStringContext needle) (builtins.unsafeDiscardStringContext text);

  flake = import ../../flake.nix;
  self = flake.outputs { inherit self; nixpkgs = stub.flake; };
  packages = system: self.packages.${system} or { };
  configurationOf = name: self.nixosConfigurations.${name};

  legacy = import ../../default.nix { nixpkgs = ./stub-nixpkgs; system = "x86_64-linux"; };

  # A module evaluated on its own (with the stand-in NixOS) for an architecture.
  withModule = module: system: (stub.evalConfig {
    modules = [ module { nixpkgs.hostPlatform = system; } ];
  }).config;

  tests = {
    "flake: nixpkgs input pins a NixOS release branch" =
      builtins.match "github:NixOS/nixpkgs/nixos-[0-9][0-9]\\.[0-9][0-9]" flake.inputs.nixpkgs.url != null;

    "flake: packages has default, installer, tarball, wsl, wsl-manifest for both architectures" =
      all (system: hasAll [ "default" "installer" "tarball" "wsl" "wsl-manifest" ] (packages system)) systems;
    "flake: each .wsl file is checked for its own architecture" =
      contains "verify --modern --strict --arch x86_64" (packages "x86_64-linux").wsl.buildCommand
      && contains "verify --modern --strict --arch aarch64" (packages "aarch64-linux").wsl.buildCommand;
    "flake: wsl-manifest hashes both architectures' .wsl files for a NixOS-<release> entry" =
      let script = (packages "x86_64-linux").wsl-manifest.buildCommand; in
      contains "${(packages "x86_64-linux").default}/bin/nixos-wsl tarball manifest" script
      && contains "--flavor NixOS --name NixOS-${lib.trivial.release}" script
      && contains "--amd64 ${(packages "x86_64-linux").wsl}/nixos.wsl --amd64-url file:///C:/nixos-wsl/nixos-x86_64.wsl" script
      && contains "--arm64 ${(packages "aarch64-linux").wsl}/nixos.wsl --arm64-url file:///C:/nixos-wsl/nixos-aarch64.wsl" script;
    "flake: wsl-manifest's release URL can be changed" =
      contains "https://example.org/r/nixos-x86_64.wsl" ((packages "x86_64-linux").wsl-manifest.override { baseUrl = "https://example.org/r"; }).buildCommand;
    "flake: packages.*.default is the crate, static, for its architecture" =
      all (system: let p = (packages system).default; in p.static && p.system == system && lib.hasPrefix "nixos-wsl-" p.name) systems;
    "flake: each architecture's images are its configuration's system.build" =
      all
        (system:
          let build = (configurationOf (if system == "x86_64-linux" then "mysystem" else "mysystem-aarch64")).config.system.build; in
          pathOf (packages system).installer == pathOf build.installer
          && pathOf (packages system).tarball == pathOf build.tarball
          && pathOf (packages system).wsl == pathOf build.wsl)
        systems;

    "flake: nixosModules has default and wsl" = hasAll [ "default" "wsl" ] (self.nixosModules or { });
    "flake: nixosModules.default adds the architecture's package (mkDefault)" =
      all (system: pathOf (withModule self.nixosModules.default system).wsl.package == pathOf (packages system).default) systems;
    "flake: nixosModules.default's package can be replaced" =
      (withModule { imports = [ self.nixosModules.default ]; wsl.package = stub.flake.legacyPackages.x86_64-linux.coreutils; } "x86_64-linux").wsl.package.name == "coreutils-9.7";

    "flake: nixosConfigurations mysystem and mysystem-aarch64 are WSL systems of their architecture" =
      all
        (name:
          let c = (configurationOf name).config; in
          c.wsl.enable
          && c.nixpkgs.hostPlatform.system == (if name == "mysystem" then "x86_64-linux" else "aarch64-linux")
          && c.wsl.package.system == c.nixpkgs.hostPlatform.system
          && lib.hasPrefix "/nix/store/" c.system.build.toplevel.outPath)
        [ "mysystem" "mysystem-aarch64" ];
    "flake: nixosConfigurations record the nixpkgs they were built from" =
      (configurationOf "mysystem").config.nixpkgs.flake.source == stub.flake.outPath;

    "flake: checks has side-effects, options-doc, no-kernel, nixpkgs-fmt, deadnix for every system" =
      all (system: hasAll [ "side-effects" "options-doc" "no-kernel" "nixpkgs-fmt" "deadnix" ] (self.checks.${system} or { })) systems;
    "flake: checks evaluate (side-effects compares two systems' toplevels; options-doc renders)" =
      all (system: all (check: lib.hasPrefix "/nix/store/" (pathOf self.checks.${system}.${check})) [ "side-effects" "options-doc" "no-kernel" ]) systems;
    "flake: checks contain every package" =
      all (system: packages system != { } && all (name: pathOf self.checks.${system}.${name} == pathOf (packages system).${name}) (builtins.attrNames (packages system))) systems;
    "flake: formatter is nixpkgs-fmt for every system" =
      all (system: lib.hasPrefix "nixpkgs-fmt-" self.formatter.${system}.name) systems;
    "flake: devShells.*.default" =
      all (system: self.devShells.${system} ? default) systems;

    "default.nix: mysystem is the module's system with nixpkgs recorded" =
      let c = legacy.nixosConfigurations.mysystem.config; in
      c.wsl.enable && c.nixpkgs.flake.source != null
      && pathOf legacy.packages.installer == pathOf c.system.build.installer;
    "default.nix: packages has default, installer, tarball" =
      hasAll [ "default" "installer" "tarball" ] (legacy.packages or { });
    "default.nix: nixosModules has default and wsl" =
      hasAll [ "default" "wsl" ] (legacy.nixosModules or { });
    "default.nix: the module adds the package" =
      pathOf (withModule legacy.nixosModules.default "x86_64-linux").wsl.package == pathOf legacy.packages.default;
  };

  result = name: value:
    let outcome = builtins.tryEval value; in
    (if outcome.success && outcome.value == true then "PASS " else "FAIL ") + name;
in
lib.mapAttrsToList result tests
