# Every wsl.* option renders into documentation: it has a description, and a default or
# defaultText that evaluates without enabling anything.
{ pkgs, configuration }:

(pkgs.nixosOptionsDoc { options = { inherit (configuration.options) wsl; }; }).optionsJSON
