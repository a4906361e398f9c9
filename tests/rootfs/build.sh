#!/bin/sh
# Builds the WSL simulator's Debian bookworm rootfs into the directory "$1" (must not exist).
#
# The result is configured the way a WSL distribution is: no gettys or console units, no udev,
# a default user `nixos` (uid 1000, passwordless sudo, lingering on), `/etc/wsl.conf` that
# makes root WSL's default user, and stand-ins for the NixOS pieces the login shell uses
# (`/nix/var/nix/profiles/system/{activate,systemd,sw}`, `/etc/set-environment` with a marker
# program in `/opt/nixos-marker/bin`, startup files that load it once as NixOS' do). The
# login shell itself is not part of it: the simulator installs it per distro instance.
#
# Everything under tests/rootfs/ is hashed into the cache key, so editing this recipe
# rebuilds the rootfs on the next test run.
set -eu

out=$1
here=$(cd "$(dirname "$0")" && pwd)

# fish is in bookworm but pulls in python3 and man-db; it is kept because the login shell
# must work for every user shell, not just bash.
# nix-bin: `nix-store` for checking an image's Nix store and database inside a distro
# (tests/e2e/image.rs). openssh-client: `ssh-add` against the SSH agent bridge (tests/e2e/features.rs).
packages=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,sudo,passwd,zsh,dash,bash,procps,util-linux,fish,nix-bin,openssh-client

mmdebstrap \
    --variant=essential \
    --format=directory \
    --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="sh '$here/customize.sh' \"\$1\" '$here/files'" \
    bookworm "$out" http://deb.debian.org/debian
