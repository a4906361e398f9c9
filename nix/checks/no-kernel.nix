# The system closure holds no kernel, kernel modules, initrd or firmware: WSL brings its own,
# and nixpkgs pulls the kernel in through more than boot.kernel.enable (in 25.11, the
# bootspec's boot.json names it). Fails the build with the offending paths.
{ pkgs, configuration }:

let
  inherit (configuration.config.system.build) toplevel;
  closure = pkgs.closureInfo { rootPaths = [ toplevel ]; };
in
pkgs.runCommand "no-kernel" { } ''
  # Names right after the store hash: linux-<version> (and its -modules), kernel-modules,
  # initrd-*, firmware and *-firmware-<version>; not util-linux, linux-pam or linux-headers.
  if grep -E '^/nix/store/[0-9a-z]{32}-(linux-[0-9][^/]*|kernel-modules|initrd-[^/]*|firmware|linux-firmware-[^/]*|[^/]*-firmware-[0-9][^/]*)$' ${closure}/store-paths; then
    echo "the system closure has a kernel, kernel modules, an initrd or firmware (above)" >&2
    exit 1
  fi
  for name in kernel kernel-modules initrd firmware boot.json; do
    if [ -e ${toplevel}/$name ] || [ -L ${toplevel}/$name ]; then
      echo "the toplevel has $name" >&2
      exit 1
    fi
  done
  touch $out
''
