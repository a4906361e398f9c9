{
  description = "NixOS as a WSL distribution";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      forAllSystems = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ];
      pkgsFor = system: nixpkgs.legacyPackages.${system};
    in
    {
      # The crate, statically linked; on x86_64 also the two tarballs of
      # nixosConfigurations.mysystem (`nix build .#installer`).
      packages = forAllSystems (system: {
        default = (pkgsFor system).pkgsStatic.callPackage ./nix/packages/nixos-wsl.nix { };
      } // lib.optionalAttrs (system == "x86_64-linux") {
        inherit (self.nixosConfigurations.mysystem.config.system.build) installer tarball;
      });

      # The module does not depend on the flake; this adds the flake's package.
      nixosModules.wsl = { lib, pkgs, ... }: {
        imports = [ ./nix/modules ];
        wsl.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
      nixosModules.default = self.nixosModules.wsl;

      nixosConfigurations.mysystem = nixpkgs.lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./nix/configurations/mysystem.nix
          { nixpkgs.hostPlatform = "x86_64-linux"; }
        ];
      };

      # Every package is a check; the rest is what a package cannot show.
      checks = forAllSystems (system:
        let
          pkgs = pkgsFor system;
        in
        self.packages.${system}
        // import ./nix/checks/lint.nix { inherit pkgs; }
        // {
          side-effects = import ./nix/checks/side-effects.nix {
            inherit pkgs;
            inherit (nixpkgs.lib) nixosSystem;
            module = self.nixosModules.default;
          };
          options-doc = import ./nix/checks/options-doc.nix {
            inherit pkgs;
            configuration = self.nixosConfigurations.mysystem;
          };
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
