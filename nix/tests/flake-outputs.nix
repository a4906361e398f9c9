# Checks the outputs of flake.nix and default.nix by name and by wiring, evaluated
# against the stand-in nixpkgs in ./stub-nixpkgs (nixpkgs itself cannot be fetched where
# this runs). Evaluate with `nix-instantiate --eval --strict --json`: the result is a
# list of "PASS <name>" / "FAIL <name>" lines; scripts/check-nix counts them.
let
  stub = import ./stub-nixpkgs/stub.nix;
  systems = [ "x86_64-linux" "aarch64-linux" ];
  all = builtins.all;
  hasAll = names: attrs: all (name: attrs ? ${name}) names;
  # Every lookup below tolerates a missing attribute, so that a missing output fails its
  # own test instead of aborting the evaluation of all of them.
  get = path: attrs: builtins.foldl' (value: name: value.${name} or { }) attrs path;

  flake = import ../../flake.nix;
  self = flake.outputs { inherit self; nixpkgs = stub.flake; };
  mysystem = get [ "nixosConfigurations" "mysystem" ] self;
  packages = system: get [ "packages" system ] self;

  legacy = import ../../default.nix { nixpkgs = ./stub-nixpkgs; system = "x86_64-linux"; };

  # Calls a NixOS module function with just the arguments the package injection reads.
  callModule = module: module {
    lib.mkDefault = value: { mkDefault = value; };
    pkgs = stub.pkgs "x86_64-linux";
  };

  # Functions do not compare equal in Nix, so a module is recognised by what it imports.
  isWslModule = module: builtins.isFunction module && (callModule module).imports or null == [ ../modules ];
  modulesOf = configuration: configuration.args.modules or [ ];

  tests = {
    "flake: nixpkgs input pins a NixOS release branch" =
      builtins.match "github:NixOS/nixpkgs/nixos-[0-9][0-9]\\.[0-9][0-9]" flake.inputs.nixpkgs.url != null;

    "flake: packages.x86_64-linux has default, installer, tarball" =
      hasAll [ "default" "installer" "tarball" ] (packages "x86_64-linux");
    "flake: packages.aarch64-linux has default" =
      packages "aarch64-linux" ? default;
    "flake: packages.*.default is the crate built with pkgsStatic" =
      all (system: (packages system).default or null == "static:${system}:nixos-wsl.nix") systems;
    "flake: packages installer and tarball are mysystem's system.build" =
      let build = get [ "config" "system" "build" ] mysystem; in
      hasAll [ "installer" "tarball" ] build
      && (packages "x86_64-linux").installer or null == build.installer
      && (packages "x86_64-linux").tarball or null == build.tarball;

    "flake: nixosModules has default and wsl" =
      hasAll [ "default" "wsl" ] (get [ "nixosModules" ] self);
    "flake: nixosModules.wsl imports nix/modules and adds the package with mkDefault" =
      let module = callModule (self.nixosModules.wsl or (_: { })); in
      module.imports or null == [ ../modules ]
      && module.wsl.package.mkDefault or null == (packages "x86_64-linux").default or { };

    "flake: nixosConfigurations.mysystem is x86_64 with the module and nix/configurations/mysystem.nix" =
      builtins.any isWslModule (modulesOf mysystem)
      && builtins.elem ../configurations/mysystem.nix (modulesOf mysystem)
      && builtins.elem { nixpkgs.hostPlatform = "x86_64-linux"; } (modulesOf mysystem);
    "flake: mysystem has system.build.installer and tarball" =
      hasAll [ "installer" "tarball" ] (get [ "config" "system" "build" ] mysystem);

    "flake: checks has side-effects, nixpkgs-fmt, deadnix, options-doc for every system" =
      all (system: hasAll [ "side-effects" "nixpkgs-fmt" "deadnix" "options-doc" ] (get [ "checks" system ] self)) systems;
    "flake: checks contain every package" =
      all (system: packages system != { } && hasAll (builtins.attrNames (packages system)) (get [ "checks" system ] self)) systems;
    "flake: formatter is nixpkgs-fmt for every system" =
      all (system: get [ "formatter" system ] self == "nixpkgs-fmt:${system}") systems;
    "flake: devShells.*.default" =
      all (system: get [ "devShells" system ] self ? default) systems;

    "default.nix: nixosConfigurations.mysystem.config.system.build has installer and tarball" =
      hasAll [ "installer" "tarball" ] (get [ "nixosConfigurations" "mysystem" "config" "system" "build" ] legacy);
    "default.nix: packages has default, installer, tarball" =
      hasAll [ "default" "installer" "tarball" ] (get [ "packages" ] legacy);
    "default.nix: nixosModules has default and wsl" =
      hasAll [ "default" "wsl" ] (get [ "nixosModules" ] legacy);
    "default.nix: the module imports nix/modules and adds the package with mkDefault" =
      let module = callModule (legacy.nixosModules.wsl or (_: { })); in
      module.imports or null == [ ../modules ]
      && module.wsl.package.mkDefault or null == "static:x86_64-linux:nixos-wsl.nix";
    "default.nix: mysystem uses the module and nix/configurations/mysystem.nix" =
      let modules = modulesOf (get [ "nixosConfigurations" "mysystem" ] legacy); in
      builtins.any isWslModule modules
      && builtins.elem ../configurations/mysystem.nix modules;
  };
in
map (name: (if tests.${name} then "PASS " else "FAIL ") + name) (builtins.attrNames tests)
