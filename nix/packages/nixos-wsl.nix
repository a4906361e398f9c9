# The crate at the repository root: nixos-wsl-shell (root's login shell), nixos-wsl-installer
# (the installer tarball's first-boot shell), nixos-wsl (admin CLI and tarball tool) and
# nixos-wsl-init (/sbin/init in WSL's own systemd mode).
#
# Call it from `pkgsStatic` (the flake and default.nix do): the shell runs on the very first
# boot, before the activation has created anything it could link against, and from WSL's
# recovery distro, so it must be a static ELF.
{ lib
, rustPlatform
  # The git revision, for `nixos-wsl version` (the flake passes self.rev or self.dirtyRev).
, rev ? "unknown"
}:

let
  manifest = lib.importTOML ../../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = manifest.package.name;
  inherit (manifest.package) version;

  # Only what cargo reads, so that editing nix/ or the docs does not rebuild the crate.
  # tests/ and benches/ are needed even though they do not run here: Cargo.toml declares
  # them as targets and cargo refuses a manifest whose target file is missing. Add any
  # directory a new explicit target lives in (examples/, build.rs).
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../Cargo.toml
      ../../Cargo.lock
      ../../src
      ../../tests
      ../../benches
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # Read at compile time (option_env! in src/cli/version.rs).
  NIXOS_WSL_REV = rev;

  # Unit tests of the library and the binaries run in checkPhase. The integration test
  # binaries (tests/*.rs: `wsl`, `tarball`) are left out on purpose: they run the programs
  # in the WSL simulator (tests/sim), which needs root, mount/PID namespaces and
  # pivot_root, none of which the Nix build sandbox grants. CI runs them as root outside
  # Nix (.ci/run).
  cargoTestFlags = [
    "--lib"
    "--bins"
  ];

  # The contract with the distribution: every program runs before the activation, so none
  # may need a dynamic loader. Fail the build instead of shipping a shell WSL cannot exec.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    for program in "$out"/bin/*; do
      if "$READELF" --program-headers "$program" | grep -q 'Requesting program interpreter'; then
        echo "$program is dynamically linked; build the package with pkgsStatic" >&2
        exit 1
      fi
    done
    runHook postInstallCheck
  '';

  meta = {
    inherit (manifest.package) description;
    license = lib.licenses.asl20;
    mainProgram = "nixos-wsl";
    platforms = lib.platforms.linux;
  };
}
