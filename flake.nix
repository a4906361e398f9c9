{
  description = "NixOS as a WSL distribution";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = lib.genAttrs systems;
      pkgsFor = system: nixpkgs.legacyPackages.${system};

      # nix/configurations/mysystem.nix for one architecture.
      mysystem = system: nixpkgs.lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./nix/configurations/mysystem.nix
          { nixpkgs.hostPlatform = system; }
        ];
      };
      # The configuration each architecture's images and checks come from.
      configurationFor = {
        x86_64-linux = self.nixosConfigurations.mysystem;
        aarch64-linux = self.nixosConfigurations.mysystem-aarch64;
      };
    in
    {
      # The crate, statically linked, and the images of that architecture's configuration
      # (`nix build .#installer`).
      # `nix build .#wsl` gives result/nixos.wsl; `.#wsl-manifest` the DistributionInfo.json
      # entry for both architectures' `.wsl` files.
      packages = forAllSystems (system: {
        default = (pkgsFor system).pkgsStatic.callPackage ./nix/packages/nixos-wsl.nix {
          rev = self.rev or self.dirtyRev or "unknown";
        };
        inherit (configurationFor.${system}.config.system.build) installer tarball wsl;
        wsl-manifest = (pkgsFor system).callPackage ./nix/packages/wsl-manifest.nix {
          nixos-wsl = self.packages.${system}.default;
          images = lib.genAttrs systems (system: self.packages.${system}.wsl);
          release = lib.trivial.release;
        };
      });

      # The module does not depend on the flake; this adds the flake's package.
      nixosModules.wsl = { lib, pkgs, ... }: {
        imports = [ ./nix/modules ];
        wsl.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
      nixosModules.default = self.nixosModules.wsl;

      nixosConfigurations = {
        mysystem = mysystem "x86_64-linux";
        mysystem-aarch64 = mysystem "aarch64-linux";
      };

      # Every package is a check; the rest is what a package cannot show.
      checks = forAllSystems (system:
        let
          pkgs = pkgsFor system;
          configuration = configurationFor.${system};
        in
        self.packages.${system}
        // import ./nix/checks/lint.nix { inherit pkgs; }
        // {
          side-effects = import ./nix/checks/side-effects.nix {
            inherit pkgs;
            inherit (nixpkgs.lib) nixosSystem;
            module = self.nixosModules.default;
          };
          options-doc = import ./nix/checks/options-doc.nix { inherit pkgs configuration; };
          no-kernel = import ./nix/checks/no-kernel.nix { inherit pkgs configuration; };
        });

      formatter = forAllSystems (system: (pkgsFor system).nixpkgs-fmt);

      devShells = forAllSystems (system:
        let
          pkgs = pkgsFor system;
        in
        {
          default = pkgs.mkShell {
            packages = [
              pkgs.cargo
              pkgs.clippy
              pkgs.rustc
              pkgs.rustfmt
              pkgs.nixpkgs-fmt
              pkgs.deadnix
            ];
          };
        });
    };
}
