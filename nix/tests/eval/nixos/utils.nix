# nixos/modules/misc/extra-arguments.nix passes `utils` (nixos/lib/utils.nix) to every
# module. The module uses one function of it, toShellPath, given here as nixpkgs defines it:
# a shell package is named through the system profile, a path is kept as it is.
{ lib, ... }:

{
  _module.args.utils.toShellPath = shell:
    if lib.types.shellPackage.check shell then "/run/current-system/sw${shell.shellPath}"
    else if lib.types.package.check shell then throw "${shell} is not a shell package"
    else shell;
}
