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

/// What `nix/tests/sim-units.nix` takes from the NixOS module, evaluated with the real nixpkgs
/// lib (`NIXOS_WSL_NIXPKGS_LIB_SOURCE`, else `../shared/nixpkgs-lib/lib`): name -> text. Needs
/// `nix-instantiate` (Debian: nix-bin) and python3, which turns the JSON into NUL-separated
/// names and texts.
///
/// Evaluated once per test run, whichever test asks first; the others wait for it. Nix 2.8's
/// first run on a fresh machine creates `/nix/var/nix/gcroots/profiles`, and two first runs at
/// once fail with "creating symlink ... File exists" (seen in CI on a fresh clone).
pub fn module_units() -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    type Units = std::collections::BTreeMap<String, String>;
    static UNITS: std::sync::OnceLock<Result<Units, String>> = std::sync::OnceLock::new();
    UNITS
        .get_or_init(|| evaluate_module_units().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn evaluate_module_units() -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    use anyhow::{ensure, Context};
    use std::io::Write;
    use std::process::{Command, Stdio};

    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = match std::env::var_os("NIXOS_WSL_NIXPKGS_LIB_SOURCE") {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => crate_dir.join("../shared/nixpkgs-lib/lib"),
    };
    let lib = lib.canonicalize().with_context(|| {
        format!(
            "the nixpkgs lib is not at {} (set NIXOS_WSL_NIXPKGS_LIB_SOURCE)",
            lib.display()
        )
    })?;
    let eval = Command::new("nix-instantiate")
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(crate_dir.join("nix/tests/sim-units.nix"))
        .env("NIXOS_WSL_NIXPKGS_LIB", &lib)
        .stderr(Stdio::piped())
        .output()
        .context("nix-instantiate (apt-get install nix-bin)")?;
    ensure!(
        eval.status.success(),
        "nix/tests/sim-units.nix does not evaluate: {}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let mut decode = Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             for k, v in json.load(sys.stdin).items():\n    \
                 sys.stdout.write(k + '\\0' + v + '\\0')",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3")?;
    decode
        .stdin
        .take()
        .context("python3's stdin")?
        .write_all(&eval.stdout)?;
    let out = decode.wait_with_output()?;
    ensure!(out.status.success(), "python3 could not decode the units");
    let text = String::from_utf8(out.stdout)?;
    let fields: Vec<&str> = text.split('\0').collect();
    Ok(fields
        .chunks_exact(2)
        .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
        .collect())
}
