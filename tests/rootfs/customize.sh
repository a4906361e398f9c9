#!/bin/sh
# mmdebstrap customize hook: turns the fresh Debian tree "$1" into a WSL-like distro.
# "$2" is tests/rootfs/files, copied over the tree first.
set -eu
root=$1
files=$2

cp -a "$files/." "$root/"
chmod 0440 "$root/etc/sudoers.d/nixos"
chmod 0755 "$root/nix/var/nix/profiles/system/activate" "$root/opt/nixos-marker/bin/nixos-marker"
chmod 0644 "$root/etc/set-environment"

# The default user: uid 1000, primary group `users`, sudo without a password, a lingering
# user manager (so `systemctl --user` works without a logind session from login(1)).
chroot "$root" useradd --create-home --uid 1000 --gid users --groups sudo \
    --shell /bin/bash nixos
mkdir -p "$root/var/lib/systemd/linger"
touch "$root/var/lib/systemd/linger/nixos"

# The stand-in NixOS system profile: systemd and sw resolve to Debian's /usr, so the login
# shell's default systemd path (/nix/var/nix/profiles/system/systemd/lib/systemd/systemd)
# and /run/current-system/sw/bin/<shell> work unchanged.
ln -s /usr "$root/nix/var/nix/profiles/system/systemd"
ln -s /usr "$root/nix/var/nix/profiles/system/sw"

# Debian's /etc/profile resets PATH for login shells, which would drop the Windows entries
# WSL appends. NixOS's does not (the login shell loads /etc/set-environment once itself), so
# the stand-in keeps the PATH a login shell was given.
sed -i '/^if \[ "$(id -u)" -eq 0 \]; then$/,/^export PATH$/d' "$root/etc/profile"
if grep -q '^export PATH$' "$root/etc/profile"; then
    echo "customize.sh: could not remove the PATH reset from /etc/profile" >&2
    exit 1
fi

# Debian's fish appends its default PATH for login shells, as Debian's /etc/profile did; NixOS'
# fish does not.
rm "$root/usr/share/fish/vendor_conf.d/00debian-profile.fish"

# NixOS' shell startup files load set-environment unless an outer process already did (it
# exports __NIXOS_SET_ENVIRONMENT_DONE): /etc/profile for login shells, /etc/bashrc for
# interactive bash, /etc/zshenv for every zsh. The stand-ins do the same, so a launch that
# loaded the file without exporting the marker shows up as a second load in the tests.
# (NixOS sources the file's store path, which always exists; hence the `-e`.) fish is left
# out: NixOS loads the file into fish with foreign-env (`fenv`), which this rootfs lacks.
guard='if [ -z "${__NIXOS_SET_ENVIRONMENT_DONE-}" ] && [ -e /etc/set-environment ]; then . /etc/set-environment; fi'
for f in etc/profile etc/bash.bashrc etc/zsh/zshenv; do
    {
        echo "# Load NixOS' environment once, as NixOS does (tests/rootfs/customize.sh)."
        echo "$guard"
        cat "$root/$f"
    } > "$root/$f.tmp"
    cat "$root/$f.tmp" > "$root/$f"
    rm "$root/$f.tmp"
done

# The login shell under test is installed per distro instance at this path.
echo /usr/local/bin/nixos-wsl-shell >> "$root/etc/shells"

# WSL has no consoles and no udev. The other masks protect the host: this kernel is shared
# with the machine running the tests, so systemd must not flush the global binfmt_misc
# table, apply kernel-wide sysctls or load kernel modules.
for unit in getty@.service serial-getty@.service console-getty.service \
    container-getty@.service getty-static.service getty.target \
    systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-binfmt.service systemd-sysctl.service systemd-modules-load.service \
    kmod-static-nodes.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# One machine id for every instance of this build (each runs in its own namespaces).
chroot "$root" systemd-machine-id-setup >/dev/null

# Keep the tree small and free of build leftovers.
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/var/log/"*.log

# The simulator refuses to start anything unless this marker is at `/` after pivot_root.
echo "nixos-wsl simulator rootfs" > "$root/.nixos-wsl-sim-rootfs"
