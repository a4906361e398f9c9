# nixos/modules/misc/assertions.nix: the same two options, same types. What nixpkgs does
# with them (top-level.nix fails on a false assertion and prints the warnings) is left to
# the tests, which read both lists.
{ lib, ... }:

{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
      description = "Conditions that must hold; the message says how to fix one that does not.";
    };
    warnings = lib.mkOption {
      internal = true;
      default = [ ];
      type = lib.types.listOf lib.types.str;
      description = "Messages printed when the system is built.";
    };
  };
}
