//! NixOS pieces a distro of the simulator can be given: a system profile of fake generations
//! and the static admin CLI at /bin/nixos-wsl, as the NixOS module links it.
//!
//! Generation N is `/nix/store/<hash>-nixos-system-gN` with an `activate` that appends N to the
//! persistent `/var/log/generations` and links `/run/current-system` (or fails, for a broken
//! generation), a `systemd` link to Debian's `/usr` (so `<toplevel>/systemd/lib/systemd/systemd`
//! is real systemd) and a `nixos-version`; the profile has `system-N-link` for each and
//! `system -> system-<current>-link`.

use super::DistroOptions;

/// The fake store path of generation `n`.
pub fn toplevel(n: u32) -> String {
    format!("/nix/store/{n:032}-nixos-system-g{n}")
}

/// Generation `n`'s activation: records itself, links /run/current-system; `broken` makes it
/// exit 1 after recording.
pub fn activate(n: u32, broken: bool) -> String {
    format!(
        "#!/bin/sh\nset -eu\necho {n} >> /var/log/generations\n{}ln -sfn {t} /run/current-system\n",
        if broken { "exit 1\n" } else { "" },
        t = toplevel(n)
    )
}

/// Adds generation `n` (its toplevel and its profile link).
pub fn generation(opts: DistroOptions, n: u32, broken: bool) -> DistroOptions {
    let t = toplevel(n);
    opts.file_mode(&format!("{t}/activate"), activate(n, broken), 0o755)
        .file(&format!("{t}/nixos-version"), format!("25.11.g{n}\n"))
        .link(&format!("{t}/systemd"), "/usr")
        .link(&format!("/nix/var/nix/profiles/system-{n}-link"), &t)
}

/// Generations 1 and 2, 2 current, and the admin CLI `cli` at /bin/nixos-wsl (Debian's /bin is
/// /usr/bin).
pub fn system(opts: DistroOptions, cli: &[u8]) -> DistroOptions {
    let opts = generation(generation(opts, 1, false), 2, false);
    opts.file_mode("/usr/bin/nixos-wsl", cli.to_vec(), 0o755)
        .link("/nix/var/nix/profiles/system", "system-2-link")
}
