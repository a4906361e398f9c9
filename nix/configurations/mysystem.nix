# The small default system the flake builds (`nix build .#installer`): a WSL distribution
# with user `nixos` and flakes enabled. Copy it as a starting point for your own.
{
  wsl = {
    enable = true;
    defaultUser = "nixos";
  };

  nix.settings.experimental-features = [ "nix-command" "flakes" ];

  # The release of the pinned nixpkgs (flake.nix); see `man configuration.nix`.
  system.stateVersion = "25.11";
}
