# `import <nixpkgs> { system = ...; }` of the stand-in (see stub.nix).
{ system, ... }: (import ./stub.nix).pkgs system
