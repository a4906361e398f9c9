//! The image's build steps run for real (issue 12): what the Nix derivations of
//! nix/modules/tarball.nix, distribution.nix and nix/packages/wsl-manifest.nix run, run here
//! on real inputs.
//!
//! - `image::icon_*`, `image::manifest_*`: `nixos-wsl tarball ico` and `tarball manifest`;
//! - `image::rootfs_*`: `nixos-wsl tarball rootfs` on a small real Nix store made with
//!   Debian's `nix-store` in a chroot store under target/ (never this machine's /nix): two
//!   store paths, their registration dumped as closureInfo's is, a spec like the module's.
//!   Then the tarball is imported into the WSL simulator, over its Debian rootfs (which brings
//!   `nix-store`), and checked inside: the store verifies with its contents, the garbage
//!   collector sees the system profile as a root, the profile resolves, the first activation
//!   runs. Root only; fails in CI when it cannot run, is skipped elsewhere.

use crate::sim;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use sim::harness::{self, TestFn};

use libtest_mimic::Trial;
use sim::{import, DistroOptions, Launch, RootShell};

pub(crate) fn tests() -> Vec<Trial> {
    let mut t = crate::unprivileged_all(tests!["image":
        icon_holds_every_png,
        icon_refuses_what_is_no_png,
        manifest_has_microsofts_shape_and_the_files_hashes,
        manifest_refuses_a_bad_name_or_url,
    ]);
    for (n, f) in tests!["image": rootfs_from_a_real_nix_store] {
        t.push(harness::gated(&n, f, needs_nix_store));
    }
    for (n, f) in tests!["image": rootfs_imported_is_a_valid_store_with_its_profile] {
        t.push(harness::gated(&n, f, needs_root_and_nix_store));
    }
    t
}

fn needs_nix_store() -> Option<String> {
    let found = Command::new("nix-store").arg("--version").output();
    (!found.is_ok_and(|o| o.status.success()))
        .then(|| "needs Debian's nix-store (apt-get install nix-bin; .ci/run installs it)".into())
}

fn needs_root_and_nix_store() -> Option<String> {
    harness::needs_root("e2e").or_else(needs_nix_store)
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(sim::under_test::cli())
        .arg("tarball")
        .args(args)
        .output()
        .expect("running nixos-wsl")
}

/// A fresh directory under target/ for this test.
fn scratch(name: &str) -> Result<PathBuf> {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("image-{name}-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------------
// The icon.

/// A PNG signature and IHDR chunk of `size` x `size` (all the icon writer reads).
fn png(size: u32) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.extend_from_slice(&13u32.to_be_bytes());
    p.extend_from_slice(b"IHDR");
    p.extend_from_slice(&size.to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    p.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&size.to_le_bytes()); // a payload that differs per image
    p
}

fn icon_holds_every_png() -> Result<()> {
    let dir = scratch("icon")?;
    let sizes = [16u32, 32, 48, 256];
    let mut args = vec!["ico".to_string(), "--output".into()];
    let ico = dir.join("nixos.ico");
    args.push(ico.display().to_string());
    for size in sizes {
        let p = dir.join(format!("{size}.png"));
        fs::write(&p, png(size))?;
        args.push(p.display().to_string());
    }
    let out = cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ensure!(out.status.success(), "{out:?}");
    let data = fs::read(&ico)?;
    // ICONDIR: reserved 0, type 1 (icon), count; then one 16-byte entry per image whose data
    // is the PNG itself at the recorded offset.
    ensure!(data[..6] == [0, 0, 1, 0, 4, 0], "header {:?}", &data[..6]);
    for (n, size) in sizes.iter().enumerate() {
        let e = &data[6 + 16 * n..6 + 16 * (n + 1)];
        ensure!(u32::from(e[0]) == size % 256 && u32::from(e[1]) == size % 256);
        let len = u32::from_le_bytes(e[8..12].try_into()?) as usize;
        let at = u32::from_le_bytes(e[12..16].try_into()?) as usize;
        ensure!(
            data[at..at + len] == png(*size)[..],
            "image {n} is not the PNG"
        );
    }
    ensure!(data.len() <= 1 << 20, "over Microsoft's 1 MiB limit");
    Ok(())
}

fn icon_refuses_what_is_no_png() -> Result<()> {
    let dir = scratch("icon-bad")?;
    fs::write(dir.join("a.gif"), b"GIF89a....")?;
    fs::write(dir.join("big.png"), png(512))?;
    for (file, why) in [("a.gif", "not a PNG"), ("big.png", "at most 256x256")] {
        let ico = dir.join("x.ico");
        let out = cli(&[
            "ico",
            "--output",
            &ico.display().to_string(),
            &dir.join(file).display().to_string(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1) && err.contains(why),
            "{file}: {err}"
        );
        ensure!(!ico.exists(), "a refused icon was written");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The manifest.

fn sha256_hex(path: &Path) -> Result<String> {
    let digest = Sha256::digest(fs::read(path)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn manifest_has_microsofts_shape_and_the_files_hashes() -> Result<()> {
    let dir = scratch("manifest")?;
    let (amd, arm) = (dir.join("x86_64.wsl"), dir.join("aarch64.wsl"));
    fs::write(&amd, b"pretend amd64 image")?;
    fs::write(&arm, b"pretend arm64 image")?;
    let out_file = dir.join("DistributionInfo.json");
    let out = cli(&[
        "manifest",
        "--flavor",
        "NixOS",
        "--name",
        "NixOS-25.11",
        "--friendly-name",
        "NixOS 25.11",
        "--amd64",
        &amd.display().to_string(),
        "--amd64-url",
        "file:///C:/nixos-wsl/nixos-x86_64.wsl",
        "--arm64",
        &arm.display().to_string(),
        "--arm64-url",
        "https://example.org/r/nixos-aarch64.wsl",
        "--output",
        &out_file.display().to_string(),
    ]);
    ensure!(out.status.success(), "{out:?}");
    let text = fs::read_to_string(&out_file)?;
    // Microsoft's format, checked the way its validator does (validate-modern.py), with a
    // JSON parser: python3, as CI has it.
    let check = format!(
        r#"
import json, sys
m = json.load(open({path:?}))
assert list(m) == ["ModernDistributions"], m
flavors = m["ModernDistributions"]
assert list(flavors) == ["NixOS"], flavors
[entry] = flavors["NixOS"]
assert set(entry) <= {{"Name", "FriendlyName", "Default", "Amd64Url", "Arm64Url"}}, entry
assert entry["Name"].startswith("NixOS") and entry["FriendlyName"] == "NixOS 25.11"
assert entry["Default"] is True
assert entry["Amd64Url"] == {{"Url": "file:///C:/nixos-wsl/nixos-x86_64.wsl", "Sha256": "0x{amd}"}}, entry
assert entry["Arm64Url"] == {{"Url": "https://example.org/r/nixos-aarch64.wsl", "Sha256": "0x{arm}"}}, entry
"#,
        path = out_file.display().to_string(),
        amd = sha256_hex(&amd)?,
        arm = sha256_hex(&arm)?,
    );
    run(Command::new("python3").arg("-c").arg(check)).with_context(|| text.clone())?;
    Ok(())
}

fn manifest_refuses_a_bad_name_or_url() -> Result<()> {
    let dir = scratch("manifest-bad")?;
    let wsl = dir.join("x.wsl");
    fs::write(&wsl, b"x")?;
    let out_file = dir.join("m.json");
    let base = |name: &str, url: &str| {
        cli(&[
            "manifest",
            "--flavor",
            "NixOS",
            "--name",
            name,
            "--friendly-name",
            "x",
            "--amd64",
            &wsl.display().to_string(),
            "--amd64-url",
            url,
            "--output",
            &out_file.display().to_string(),
        ])
    };
    for (out, why) in [
        (
            base("Nix-25.11", "https://x/n.wsl"),
            "must start with the flavor",
        ),
        (
            base("NixOS-25.11", "https://x/n.tar.gz"),
            "does not end in .wsl",
        ),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(1) && err.contains(why), "{err}");
        ensure!(!out_file.exists(), "a refused manifest was written");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The root filesystem from a real Nix store.

/// A chroot store with a fake system and a dependency, a closure directory like
/// closureInfo's, and the rootfs tarball `nixos-wsl tarball rootfs` makes of them.
struct Built {
    tarball: PathBuf,
    system: String,
    dep: String,
}

fn built() -> Result<&'static Built> {
    static BUILT: OnceLock<std::result::Result<Built, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_rootfs().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn build_rootfs() -> Result<Built> {
    let dir = scratch("rootfs")?;
    let store = dir.join("store");
    let store_arg = format!("local?root={}", store.display());
    let nix_store = |args: &[&str]| {
        run(Command::new("nix-store")
            .args(["--store", &store_arg])
            .args(args)
            .env("NIX_CONFIG", "build-users-group ="))
    };
    let add = |name: &str, files: &[(&str, &str, u32)]| -> Result<String> {
        let src = dir.join(name);
        for (path, text, mode) in files {
            let p = src.join(path);
            fs::create_dir_all(p.parent().context("parent")?)?;
            fs::write(&p, text)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
        }
        Ok(nix_store(&["--add", &src.display().to_string()])?
            .trim()
            .to_string())
    };
    let dep = add("dep", &[("share/data", "some data\n", 0o644)])?;
    // The "system": an activation that records that it ran and links /run/current-system,
    // as NixOS' does, using nothing but its own store path and /bin/sh.
    let system = add(
        "nixos-system",
        &[
            (
                "activate",
                "#!/usr/bin/sh\nset -e\nsystemConfig=$(dirname \"$(readlink -f \"$0\")\")\nln -sfn \"$systemConfig\" /run/current-system\necho activated >/run/first-activation\n",
                0o755,
            ),
            ("sw/bin/hello", "#!/usr/bin/sh\necho hello\n", 0o755),
        ],
    )?;
    let closure = dir.join("closure");
    fs::create_dir_all(&closure)?;
    fs::write(
        closure.join("registration"),
        nix_store(&["--dump-db", &dep, &system])?,
    )?;
    fs::write(closure.join("store-paths"), format!("{dep}\n{system}\n"))?;

    let etc = dir.join("etc");
    fs::create_dir_all(etc.join("nixos"))?;
    // /usr/bin: the image's own /bin (a directory) hides Debian's merged-/usr /bin link.
    fs::write(
        etc.join("passwd"),
        "root:x:0:0:System administrator:/root:/usr/bin/bash\n",
    )?;
    fs::write(etc.join("shadow"), "root:!:1::::::\n")?;
    fs::write(etc.join("nixos/configuration.nix"), "{ }\n")?;
    fs::write(etc.join("gitconfig"), "[user]\n")?;
    let nix_store_bin = run(Command::new("sh").args(["-c", "command -v nix-store"]))?;
    let spec = format!(
        "closure\t{closure}\nnix-store\t{nix}\nsystem\t{system}\n\
         file\t/etc/passwd\t0644\t0\t0\t{etc}/passwd\n\
         file\t/etc/shadow\t0600\t0\t0\t{etc}/shadow\n\
         file\t/home/nixos/.gitconfig\t0644\t1000\t100\t{etc}/gitconfig\n\
         link\t/bin/hello\t{system}/sw/bin/hello\n\
         tree\t/etc/nixos\t{etc}/nixos\n",
        closure = closure.display(),
        nix = nix_store_bin.trim(),
        etc = etc.display(),
    );
    let spec_file = dir.join("spec");
    fs::write(&spec_file, spec)?;
    let tarball = dir.join("rootfs.tar.gz");
    let out = cli(&[
        "rootfs",
        "--spec",
        &spec_file.display().to_string(),
        "--work",
        &dir.join("root").display().to_string(),
        "--output",
        &tarball.display().to_string(),
        "--store-root",
        &store.display().to_string(),
    ]);
    ensure!(
        out.status.success(),
        "tarball rootfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Built {
        tarball,
        system,
        dep,
    })
}

fn rootfs_from_a_real_nix_store() -> Result<()> {
    let b = built()?;
    let listing = run(Command::new("tar").arg("-tvzf").arg(&b.tarball))?;
    let has = |needle: &str| listing.lines().any(|l| l.contains(needle));
    for want in [
        format!(
            "./nix/store/{}/activate",
            b.system.trim_start_matches("/nix/store/")
        ),
        format!(
            "./nix/store/{}/share/data",
            b.dep.trim_start_matches("/nix/store/")
        ),
        "./nix/var/nix/db/db.sqlite".into(),
        "./nix/var/nix/gcroots/profiles -> /nix/var/nix/profiles".into(),
        format!("./nix/var/nix/profiles/system-1-link -> {}", b.system),
        "./nix/var/nix/profiles/system -> system-1-link".into(),
        "./etc/nixos/configuration.nix".into(),
        format!("./bin/hello -> {}/sw/bin/hello", b.system),
    ] {
        ensure!(has(&want), "{want} missing:\n{listing}");
    }
    ensure!(
        listing.lines().any(|l| l.starts_with("-rw-------")
            && l.contains("0/0")
            && l.ends_with("./etc/shadow")),
        "/etc/shadow is not root's 0600:\n{listing}"
    );
    ensure!(
        listing
            .lines()
            .any(|l| l.contains("1000/100") && l.ends_with("./home/nixos/.gitconfig")),
        "the extra file lost its owner:\n{listing}"
    );
    ensure!(
        !has(".links"),
        "nix-store's own /nix/store/.links came along:\n{listing}"
    );
    for gone in ["temproots", "gcroots/auto", "db/reserved", "userpool"] {
        ensure!(
            !has(&format!("/nix/var/nix/{gone}")),
            "{gone} left behind:\n{listing}"
        );
    }
    ensure!(
        !listing.lines().any(|l| l.starts_with('h')),
        "hard links in a tarball of two single files:\n{listing}"
    );
    Ok(())
}

fn rootfs_imported_is_a_valid_store_with_its_profile() -> Result<()> {
    let b = built()?;
    let d = import::import_over_rootfs(
        DistroOptions::new("image-rootfs", RootShell::Existing("/usr/bin/bash".into())),
        &b.tarball,
    )?;
    d.boot()?;
    // WSL's default user after an import is root.
    let check = format!(
        "set -e\n\
         nix-store --verify --check-contents && echo verified\n\
         nix-store -q --roots {system}\n\
         readlink -f /nix/var/nix/profiles/system\n\
         /nix/var/nix/profiles/system/activate && cat /run/first-activation\n\
         readlink /run/current-system\n\
         /bin/hello\n\
         nix-store -q --references {system} | wc -l\n",
        system = b.system
    );
    let out = d.run(&Launch::command(check))?;
    let text = out.out();
    ensure!(out.code == 0, "{out}");
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.first() == Some(&"verified"), "{out}");
    ensure!(
        text.contains(&format!(
            "/nix/var/nix/profiles/system-1-link -> {}",
            b.system
        )),
        "the garbage collector does not see the system profile:\n{out}"
    );
    let system_line = format!("{}\n", b.system);
    ensure!(
        text.matches(system_line.as_str()).count() >= 2,
        "the profile or /run/current-system is not the system:\n{out}"
    );
    ensure!(
        text.contains("activated\n") && text.contains("hello\n"),
        "{out}"
    );
    Ok(())
}
