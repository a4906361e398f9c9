# The static checks scripts/check-nix runs, as flake checks: every .nix file is formatted
# with nixpkgs-fmt and has no dead bindings (deadnix). Parsing is implied: both tools
# fail on a file that does not parse.
{ pkgs }:

let
  inherit (pkgs) lib;
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ../..;
  };
  check = name: tool: command: pkgs.runCommand "check-${name}" { nativeBuildInputs = [ tool ]; } ''
    cd ${src}
    ${command}
    touch $out
  '';
in
{
  nixpkgs-fmt = check "nixpkgs-fmt" pkgs.nixpkgs-fmt "nixpkgs-fmt --check .";
  deadnix = check "deadnix" pkgs.deadnix "deadnix --fail .";
}
