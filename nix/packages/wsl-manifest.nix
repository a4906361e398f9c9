# A DistributionInfo.json entry for `wsl --install` (Microsoft's format): the flavor NixOS,
# one version, and each architecture's `.wsl` file with its download URL and SHA-256.
# Enterprises point the registry value DistributionListUrl at it (see README). Where the
# files are published is `baseUrl`; `file://` URLs install from a local or shared folder:
#
#   nix build .#wsl-manifest                      # file:///C:/nixos-wsl/nixos-<arch>.wsl
#   (pkgs.callPackage ./nix/packages/wsl-manifest.nix { ... }).override { baseUrl = "https://..."; }
{ lib
, runCommand
, nixos-wsl
, images
, release
, baseUrl ? "file:///C:/nixos-wsl"
}:

let
  flags = { x86_64-linux = "--amd64"; aarch64-linux = "--arm64"; };
  file = system: "nixos-${lib.head (lib.splitString "-" system)}.wsl";
in
runCommand "wsl-manifest" { } ''
  mkdir -p "$out/nix-support"
  ${nixos-wsl}/bin/nixos-wsl tarball manifest \
    --flavor NixOS --name NixOS-${release} --friendly-name "NixOS ${release}" \
    ${lib.concatStrings (lib.mapAttrsToList (system: image:
      "${flags.${system}} ${image}/nixos.wsl ${flags.${system}}-url ${lib.escapeShellArg "${baseUrl}/${file system}"} ") images)}\
    --output "$out/DistributionInfo.json"
  echo "file json $out/DistributionInfo.json" > "$out/nix-support/hydra-build-products"
''
