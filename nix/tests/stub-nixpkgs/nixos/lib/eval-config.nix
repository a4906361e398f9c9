# nixos/lib/eval-config.nix of the stand-in (see ../../stub.nix).
(import ../../stub.nix).evalConfig
