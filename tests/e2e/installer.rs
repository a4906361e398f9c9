//! End-to-end tests of the installer tarball (issue 3) in the WSL simulator (tests/sim), with
//! real systemd in the Debian test rootfs: build the rootfs tarball with `nixos-wsl-shell` as
//! root's shell, wrap it in the installer tarball, `wsl --import` it (the simulator refuses hard
//! links, as WSL does) and launch it.
//!
//! Tiers:
//! - `unit::*`: the simulator's import scanner, no privileges;
//! - `installer::*`: root-only (namespaces, mounts, cgroups, device nodes). Without root they
//!   are skipped with a note, except under `CI`, where they fail. They also need a static
//!   `nixos-wsl-installer` (the installer system has no libc): CI runs the tests with
//!   `--target x86_64-unknown-linux-musl`; elsewhere a dynamic build skips them (fails in CI).
//!
//! The rootfs and installer tarballs are built once per run and shared (about 100 MB each).
//! [`Fixture::cleanup`] removes them after the run (tests/e2e/main.rs).

use crate::sim;

use sim::harness::{self, TestFn};

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use libtest_mimic::Trial;

use sim::import::{self, Refused, Scan};
use sim::{Distro, DistroOptions, Exit, Launch, Output, RootShell};

/// Where the installer keeps its files in the installer system (src/installer/layout.rs).
const INSTALLER_DIR: &str = "nixos-wsl-installer";

/// Bound for a launch that unpacks the whole rootfs and boots systemd on 2 busy cores.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);

pub(crate) fn tests() -> Vec<Trial> {
    let mut t = crate::unprivileged_all(tests!["unit": import_scan_reads_every_tar_format]);
    t.extend(
        tests!["installer":
            import_refuses_a_rootfs_tarball_with_hard_links,
            first_launch_installs_and_hands_over,
            interrupted_install_is_completed_by_the_next_launch,
            damaged_embedded_tarball_leaves_the_installer_intact,
            as_a_wsl_file_it_passes_microsofts_rules,
            installed_system_has_its_configuration_and_welcomes_once,
        ]
        .into_iter()
        .map(|(n, f)| harness::gated(&n, f, cannot_run)),
    );
    t
}

// ---------------------------------------------------------------------------------------
// Harness plumbing.

/// Why a privileged test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    if let Some(why) = harness::needs_root("e2e") {
        return Some(why);
    }
    match fs::read(installer_bin()) {
        Err(e) => Some(format!("cannot read {}: {e}", installer_bin().display())),
        Ok(elf) if nixos_wsl::tarball::image::elf_has_interpreter(&elf) => Some(format!(
            "{} is dynamically linked and the installer system has no libc: run \
             `cargo test --target x86_64-unknown-linux-musl --test e2e` (or set \
             NIXOS_WSL_TEST_INSTALLER_BIN to a static build)",
            installer_bin().display()
        )),
        Ok(_) => None,
    }
}

fn installer_bin() -> PathBuf {
    sim::under_test::build(
        "NIXOS_WSL_TEST_INSTALLER_BIN",
        env!("CARGO_BIN_EXE_nixos-wsl-installer"),
    )
}

/// Runs the admin CLI; fails unless it exits 0.
fn cli(cmd: &mut Command) -> Result<std::process::Output> {
    let out = cmd.output().context("running nixos-wsl")?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn mb(path: &Path) -> f64 {
    fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------
// The shared tarballs.

/// The tarballs every privileged test uses, built once per run.
pub(crate) struct Fixture {
    /// The rootfs tarball: the Debian test rootfs with nixos-wsl-shell as root's shell. It
    /// has hard links, as Debian's (and a Nix store's) trees do.
    rootfs: PathBuf,
    /// Its headers, as the simulator's import reads them.
    rootfs_scan: Scan,
    /// The installer tarball around it.
    installer: PathBuf,
}

static FIXTURE: OnceLock<std::result::Result<Fixture, String>> = OnceLock::new();

fn fixture_dir() -> PathBuf {
    sim::rootfs::cache_dir().join(format!("installer-test-{}", std::process::id()))
}

impl Fixture {
    fn get() -> Result<&'static Fixture> {
        FIXTURE
            .get_or_init(|| Fixture::build().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("building the shared tarballs failed: {e}"))
    }

    fn build() -> Result<Fixture> {
        let dir = fixture_dir();
        // Leftovers of runs that were killed before their cleanup.
        if let Ok(entries) = fs::read_dir(sim::rootfs::cache_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("installer-test-") {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let rootfs = dir.join("rootfs.tar.gz");
        let t = Instant::now();
        build_rootfs_tarball(&rootfs)?;
        eprintln!(
            "installer tests: rootfs tarball ({:.0} MB, gzip -1) built in {:.1} s",
            mb(&rootfs),
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let rootfs_scan = import::scan(&rootfs)?;
        let scanned = t.elapsed();
        let t = Instant::now();
        let installer = dir.join("installer.tar.gz");
        cli(Command::new(sim::under_test::cli())
            .args(["tarball", "installer", "--rootfs"])
            .arg(&rootfs)
            .arg("--installer")
            .arg(installer_bin())
            .arg("--output")
            .arg(&installer))?;
        eprintln!(
            "installer tests: installer tarball ({:.0} MB) wrapped in {:.1} s; import scan of the rootfs tarball {:.1} s",
            mb(&installer),
            t.elapsed().as_secs_f64(),
            scanned.as_secs_f64()
        );
        Ok(Fixture {
            rootfs,
            rootfs_scan,
            installer,
        })
    }

    pub(crate) fn cleanup() {
        if FIXTURE.get().is_some() && std::env::var_os("NIXOS_WSL_SIM_KEEP").is_none() {
            let _ = fs::remove_dir_all(fixture_dir());
        }
    }
}

/// `nixos-wsl tarball build --keep-owners` of the Debian test rootfs with nixos-wsl-shell as
/// root's shell. The shell is installed exactly as the simulator does it for every instance
/// (an unbooted instance's upper dir holds the binary and the edited `/etc/passwd`); the tool
/// packs a read-only overlay of that upper dir over the cached rootfs, mounted in a private
/// mount namespace of the tool's process only, so nothing is copied and nothing leaks to the
/// host.
fn build_rootfs_tarball(out: &Path) -> Result<()> {
    let lower = sim::rootfs::ensure()?.dir;
    let staging = Distro::new(image_files(DistroOptions::new(
        "Staging",
        RootShell::NixosWslShell(sim::under_test::shell()),
    ))?)?;
    let upper = staging.state_dir().join("upper");
    let mnt = staging.state_dir().join("root");
    let data = CString::new(format!("lowerdir={}:{}", upper.display(), lower.display()))?;
    let target = CString::new(mnt.as_os_str().as_bytes())?;
    let mut cmd = Command::new(sim::under_test::cli());
    cmd.args(["tarball", "build", "--source"])
        .arg(&mnt)
        .arg("--output")
        .arg(out)
        .args(["--keep-owners", "--level", "1"]);
    // SAFETY: between fork and exec only raw syscalls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"overlay".as_ptr(),
                target.as_ptr(),
                c"overlay".as_ptr(),
                libc::MS_RDONLY,
                data.as_ptr().cast(),
            ))
        });
    }
    cli(&mut cmd).context("building the rootfs tarball")?;
    Ok(())
}

/// What the NixOS module adds to a root filesystem for the `.wsl` form and for rebuilding
/// (nix/modules/distribution.nix, rebuild.nix, shell.nix), the same files with the same
/// modes: `/etc/wsl-distribution.conf` with an icon and a terminal profile where Microsoft
/// wants them, `/etc/nixos/configuration.nix`, and `welcome = true`.
fn image_files(opts: DistroOptions) -> Result<DistroOptions> {
    let png = |size: u32| {
        let mut p = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        p
    };
    let icon = nixos_wsl::tarball::ico::from_pngs(&[png(16), png(32), png(256)])?;
    Ok(opts
        .file(
            "/etc/wsl-distribution.conf",
            "[oobe]\ndefaultName=NixOS\ndefaultUid=1000\n\n[shortcut]\nenabled=true\nicon=/usr/share/wsl/nixos.ico\n\n[windowsterminal]\nenabled=true\nprofileTemplate=/usr/lib/wsl/terminal-profile.json\n",
        )
        .file("/usr/share/wsl/nixos.ico", icon)
        .file_mode(
            "/usr/lib/wsl/terminal-profile.json",
            r#"{"profiles":[{"colorScheme":"NixOS"}],"schemes":[{"name":"NixOS"}]}"#,
            0o640,
        )
        .file("/etc/nixos/configuration.nix", "{ ... }:\n\n{\n  wsl.enable = true;\n}\n")
        .file("/etc/nixos-wsl.conf", "welcome = true\n"))
}

/// `wsl --import` of the installer tarball (not booted yet).
fn import_installer(name: &str) -> Result<Distro> {
    let fx = Fixture::get()?;
    // The root shell option is not used by an import: the tarball's /etc/passwd decides.
    let opts = DistroOptions::new(name, RootShell::Existing("/bin/sh".into()));
    import::import(opts, &fx.installer)
}

/// A path of the distro's disk, seen from the host (for peeking while it is down or idle).
fn disk(d: &Distro, path: &str) -> PathBuf {
    d.state_dir()
        .join("upper")
        .join(path.trim_start_matches('/'))
}

fn installer_file(d: &Distro, name: &str) -> PathBuf {
    disk(d, &format!("{INSTALLER_DIR}/{name}"))
}

/// Root's shell in the disk's `/etc/passwd`.
fn root_shell_on_disk(d: &Distro) -> Result<String> {
    let passwd = fs::read_to_string(disk(d, "etc/passwd"))?;
    passwd
        .lines()
        .find(|l| l.starts_with("root:"))
        .and_then(|l| l.rsplit(':').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no root entry in /etc/passwd"))
}

/// Every path of the distro's disk with its type, mode, owner, size, mtime and link target.
fn snapshot(d: &Distro) -> Result<BTreeMap<String, String>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        for e in fs::read_dir(dir)? {
            let path = e?.path();
            let m = fs::symlink_metadata(&path)?;
            let rel = path.strip_prefix(base)?.to_string_lossy().into_owned();
            let target = match m.file_type().is_symlink() {
                true => fs::read_link(&path)?.to_string_lossy().into_owned(),
                false => String::new(),
            };
            let size = if m.is_dir() { 0 } else { m.len() };
            out.insert(
                rel,
                format!(
                    "{:o} {}:{} {size} {} {target}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.mtime()
                ),
            );
            if m.is_dir() {
                walk(base, &path, out)?;
            }
        }
        Ok(())
    }
    let base = disk(d, "/");
    let mut out = BTreeMap::new();
    walk(&base, &base, &mut out)?;
    Ok(out)
}

fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut lines = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => lines.push(format!("- {k} {v}")),
            Some(w) if w != v => lines.push(format!("~ {k} {v} -> {w}")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            lines.push(format!("+ {k} {v}"));
        }
    }
    lines.truncate(20);
    lines.join("\n")
}

/// The first launch of the tests: `wsl -- 'echo hi; exit 3'`.
fn echo_hi() -> Launch {
    Launch::command("echo hi; exit 3").timeout(INSTALL_TIMEOUT)
}

/// `echo hi; exit 3` printed `hi` and exited 3.
fn ran_echo_hi(out: &Output) -> Result<()> {
    ensure!(
        out.exit == Exit::Code(3) && out.out() == "hi\n",
        "expected `hi` and exit 3: {out}"
    );
    Ok(())
}

/// The installed system: systemd running, the installer gone without a trace, root's shell
/// the real one; the launch goes straight to it (exit 0, nothing on stderr).
fn check_installed(d: &Distro) -> Result<()> {
    let out =
        d.run(&Launch::command("systemctl is-system-running --wait").timeout(INSTALL_TIMEOUT))?;
    if out.out().trim() != "running" || out.code != 0 || !out.err_lines().is_empty() {
        let failed =
            d.root_sh("systemctl --failed --no-legend; systemctl list-jobs --no-legend")?;
        bail!(
            "expected systemd running and a quiet launch: {out}\nfailed units and jobs: {}",
            failed.out()
        );
    }
    let out = d.root_sh(
        "test ! -e /nixos-wsl-installer || echo installer-dir-left; \
         find / -xdev -name '.nixos-wsl-part-*' | sed 's/^/left: /'; \
         grep '^root:' /etc/passwd | cut -d: -f7; readlink -f /bin/sh",
    )?;
    ensure!(
        out.code == 0 && out.out() == "/usr/local/bin/nixos-wsl-shell\n/usr/bin/dash\n",
        "expected no installer files, root's shell nixos-wsl-shell and /bin/sh dash: {out}"
    );
    Ok(())
}

fn manifest_entries(d: &Distro) -> Result<u64> {
    let text = fs::read_to_string(installer_file(d, "manifest"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("entries "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow!("no entry count in the manifest:\n{text}"))
}

// ---------------------------------------------------------------------------------------
// unit::*

/// The import scanner finds hard links (and `/etc`, `/bin/sh`) in every format and
/// compression GNU tar writes, including names longer than a ustar header holds.
fn import_scan_reads_every_tar_format() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("nixos-wsl-import-scan-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let res = (|| -> Result<()> {
        let src = dir.join("src");
        // Longer than a ustar name field (100), splittable into its prefix field.
        let long = format!("{}/{}", "d".repeat(60), "e".repeat(60));
        fs::create_dir_all(src.join("etc"))?;
        fs::create_dir_all(src.join(&long))?;
        fs::write(src.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        fs::write(src.join(&long).join("f"), "data")?;
        // Short names: a ustar hard link keeps its target in the 100-byte link name field.
        fs::write(src.join("a"), "data")?;
        fs::hard_link(src.join("a"), src.join("b"))?;
        std::os::unix::fs::symlink("/etc/passwd", src.join("link"))?;
        let mut compressors = vec![("", ""), ("gz", "--gzip")];
        for (tool, flag, ext) in [("xz", "--xz", "xz"), ("zstd", "--zstd", "zst")] {
            if Command::new(tool).arg("--version").output().is_ok() {
                compressors.push((ext, flag));
            }
        }
        for format in ["gnu", "pax", "ustar"] {
            for (ext, flag) in &compressors {
                let tarball = dir.join(format!("{format}.tar.{ext}"));
                let mut cmd = Command::new("tar");
                cmd.arg("-c")
                    .arg(format!("--format={format}"))
                    .args(["--sort=name", "-f"])
                    .arg(&tarball)
                    .arg("-C")
                    .arg(&src);
                if !flag.is_empty() {
                    cmd.arg(flag);
                }
                let out = cmd.arg(".").output()?;
                ensure!(
                    out.status.success(),
                    "tar --format={format} failed: {out:?}"
                );
                let scan = import::scan(&tarball)?;
                let link = ("b".to_string(), "a".to_string());
                ensure!(
                    scan.hard_links == vec![link.clone()] && scan.has_etc && !scan.has_bin_sh,
                    "{format} {ext}: {scan:?}"
                );
                ensure!(
                    scan.refusal()
                        == Some(Refused::HardLink {
                            path: link.0,
                            target: link.1
                        }),
                    "{format} {ext}: {:?}",
                    scan.refusal()
                );
                ensure!(
                    scan.entries == 9,
                    "{format} {ext}: {} entries",
                    scan.entries
                );
            }
        }
        // Without the hard link it is importable; without /etc and /bin/sh it is not.
        fs::remove_file(src.join("b"))?;
        let ok = dir.join("ok.tar");
        let out = Command::new("tar")
            .arg("-cf")
            .arg(&ok)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .output()?;
        ensure!(out.status.success(), "{out:?}");
        ensure!(import::scan(&ok)?.refusal().is_none());
        let no_etc = dir.join("no-etc.tar.gz");
        let out = Command::new("tar")
            .arg("-czf")
            .arg(&no_etc)
            .arg("-C")
            .arg(&src)
            .arg(&long)
            .output()?;
        ensure!(out.status.success(), "{out:?}");
        ensure!(import::scan(&no_etc)?.refusal() == Some(Refused::NoEtcOrBinSh));
        // A damaged header is an error, not an empty archive.
        let mut bytes = fs::read(&ok)?;
        bytes[0] ^= 0x55;
        let bad = dir.join("bad.tar");
        fs::write(&bad, bytes)?;
        ensure!(import::scan(&bad).is_err());
        Ok(())
    })();
    let _ = fs::remove_dir_all(&dir);
    res
}

// ---------------------------------------------------------------------------------------
// installer::*

/// The rootfs tarball has hard links, so WSL (and the simulator) cannot import it: the reason
/// the installer tarball exists. Nothing is left behind.
fn import_refuses_a_rootfs_tarball_with_hard_links() -> Result<()> {
    let fx = Fixture::get()?;
    ensure!(
        !fx.rootfs_scan.hard_links.is_empty(),
        "the Debian rootfs tarball was expected to have hard links: {:?}",
        fx.rootfs_scan
    );
    let state = sim::rootfs::cache_dir().join("state");
    let before: Vec<_> = fs::read_dir(&state)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let opts = DistroOptions::new("HardLinks", RootShell::Existing("/bin/sh".into()));
    let err = match import::import(opts, &fx.rootfs) {
        Ok(_) => bail!("importing a tarball with hard links succeeded"),
        Err(e) => e,
    };
    ensure!(
        matches!(
            err.downcast_ref::<Refused>(),
            Some(Refused::HardLink { .. })
        ),
        "expected a hard-link refusal, got: {err:#}"
    );
    ensure!(format!("{err:#}").contains("Unspecified error"), "{err:#}");
    let after: Vec<_> = fs::read_dir(&state)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    ensure!(
        after
            .iter()
            .all(|n| before.contains(n) || !n.to_string_lossy().starts_with("HardLinks")),
        "a refused import left a distro instance behind"
    );
    Ok(())
}

/// Issue 3's flow: verify, import (no hard links, or the import would fail), and the very
/// first `wsl -- 'echo hi; exit 3'` installs, hands over, prints `hi` and exits 3; afterwards
/// systemd runs, the installer is gone, and launches go straight to the real shell.
/// The installer tarball is what `nix build .#wsl` renames to `nixos.wsl`: Microsoft's rules
/// for `.wsl` files (`tarball verify --modern`) find no error and no warning in it.
fn as_a_wsl_file_it_passes_microsofts_rules() -> Result<()> {
    let fx = Fixture::get()?;
    let out = Command::new(sim::under_test::cli())
        .args([
            "tarball", "verify", "--modern", "--strict", "--arch", "x86_64",
        ])
        .arg(&fx.installer)
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && report.contains("summary: 0 errors, 0 warnings"),
        "tarball verify --modern --strict ({}):\n{report}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// After the install: `/etc/nixos/configuration.nix` is there, owned by root, for the first
/// `sudo nixos-rebuild switch`; the welcome shows on the first interactive launch only, not on
/// the first launch, which was a command.
fn installed_system_has_its_configuration_and_welcomes_once() -> Result<()> {
    let d = import_installer("Welcome")?;
    d.boot()?;
    let out = d.run(&echo_hi())?;
    ran_echo_hi(&out)?;
    ensure!(
        !out.err().contains("Welcome"),
        "welcome on `wsl -- cmd`: {out}"
    );
    let owner = d.root_sh("stat -c '%U:%G %a' /etc/nixos/configuration.nix")?;
    ensure!(owner.out() == "root:root 644\n", "{owner}");
    let first = d.run(
        &Launch::login()
            .pty()
            .stdin("exit 0\n")
            .timeout(INSTALL_TIMEOUT),
    )?;
    ensure!(
        first.out().contains("Welcome to NixOS on WSL"),
        "first interactive launch: {first}"
    );
    let second = d.run(
        &Launch::login()
            .pty()
            .stdin("exit 0\n")
            .timeout(INSTALL_TIMEOUT),
    )?;
    ensure!(
        !second.out().contains("Welcome"),
        "second interactive launch: {second}"
    );
    Ok(())
}

fn first_launch_installs_and_hands_over() -> Result<()> {
    let fx = Fixture::get()?;
    let out = Command::new(sim::under_test::cli())
        .args(["tarball", "verify"])
        .arg(&fx.installer)
        .output()?;
    ensure!(
        out.status.success(),
        "tarball verify failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let d = import_installer("FirstLaunch")?;
    ensure!(
        root_shell_on_disk(&d)? == format!("/{INSTALLER_DIR}/nixos-wsl-installer"),
        "after import, root's shell should be the installer"
    );
    d.boot()?;
    let t = Instant::now();
    let out = d.run(&echo_hi())?;
    let first = t.elapsed();
    ran_echo_hi(&out)?;
    // The installer's one line on a non-terminal stderr is the only thing besides `hi`.
    let err = out.err_lines();
    ensure!(
        err.len() == 1 && err[0].starts_with("nixos-wsl-installer: unpacked "),
        "expected the installer's one-line summary on stderr: {out}"
    );
    check_installed(&d)?;

    // Hard links of the rootfs survive the installer's extraction.
    for (path, target) in &fx.rootfs_scan.hard_links {
        let out = d.root_sh(&format!(
            "[ \"$(stat -c %i '/{path}')\" = \"$(stat -c %i '/{target}')\" ] && echo same"
        ))?;
        ensure!(
            out.out() == "same\n",
            "/{path} and /{target} are not one file: {out}"
        );
    }

    // A fresh start (wsl -t) runs the real system, nothing of the installer.
    d.terminate()?;
    d.boot()?;
    let out = d.run(&Launch::command("echo again; exit 4").timeout(INSTALL_TIMEOUT))?;
    ensure!(
        out.exit == Exit::Code(4) && out.out() == "again\n" && out.err_lines().is_empty(),
        "{out}"
    );
    eprintln!(
        "  first launch (install + systemd + command): {:.1} s",
        first.as_secs_f64()
    );
    Ok(())
}

/// Killed mid-extraction, then killed again right after sealing (payload removed, commit
/// journal written, `/etc/passwd` not switched yet): each next launch carries on, and the
/// last one ends in the working system.
fn interrupted_install_is_completed_by_the_next_launch() -> Result<()> {
    let d = import_installer("Interrupted")?;
    let entries = manifest_entries(&d)?;
    let installer = format!("/{INSTALLER_DIR}/nixos-wsl-installer");
    d.boot()?;
    let stop_after =
        |n: u64| echo_hi().wslenv("NIXOS_WSL_INSTALLER_TEST_STOP_AFTER", n.to_string());

    let out = d.run(&stop_after(entries / 2))?;
    ensure!(
        out.exit == Exit::Signal(9) && out.code == 9 && out.stdout.is_empty(),
        "expected the installer killed mid-extraction (wsl.exe exits 9): {out}"
    );
    ensure!(
        installer_file(&d, "in-progress").exists()
            && installer_file(&d, "rootfs.tar.gz").exists()
            && root_shell_on_disk(&d)? == installer,
        "expected an interrupted extraction on disk (marker, payload, installer's passwd)"
    );

    // A fresh start in between, as after closing the terminal or `wsl --shutdown`.
    d.terminate()?;
    d.boot()?;
    let out = d.run(&stop_after(entries + 3))?;
    ensure!(
        out.exit == Exit::Signal(9) && out.stdout.is_empty(),
        "expected the installer killed after sealing: {out}"
    );
    ensure!(
        installer_file(&d, "commit").exists()
            && !installer_file(&d, "rootfs.tar.gz").exists()
            && !installer_file(&d, "manifest").exists()
            && root_shell_on_disk(&d)? == installer,
        "expected a sealed, uncommitted install on disk (journal, no payload, installer's passwd)"
    );

    let out = d.run(&echo_hi())?;
    ran_echo_hi(&out)?;
    check_installed(&d)
}

/// A damaged (bytes flipped) and then a truncated embedded tarball: the first launch fails
/// with the reason and changes nothing on disk; once the file is whole again, the same
/// installer installs, so it was left intact.
fn damaged_embedded_tarball_leaves_the_installer_intact() -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let d = import_installer("Damaged")?;
    let payload = installer_file(&d, "rootfs.tar.gz");
    let len = fs::metadata(&payload)?.len();
    let flip = |f: &Path| -> Result<()> {
        let mut file = fs::OpenOptions::new().read(true).write(true).open(f)?;
        let mut buf = [0u8; 16];
        file.seek(SeekFrom::Start(len / 2))?;
        file.read_exact(&mut buf)?;
        buf.iter_mut().for_each(|b| *b ^= 0xff);
        file.seek(SeekFrom::Start(len / 2))?;
        file.write_all(&buf)?;
        Ok(())
    };

    let fails = |what: &str, reason: &str| -> Result<()> {
        d.boot()?;
        let before = snapshot(&d)?;
        let out = d.run(&echo_hi())?;
        let err = out.err();
        ensure!(
            out.code == 1
                && out.stdout.is_empty()
                && err.contains("the embedded root filesystem is damaged")
                && err.contains(reason)
                && err.contains("nothing was changed")
                && err.contains("wsl --import"),
            "{what}: expected exit 1 and the reason ({reason:?}) on stderr: {out}"
        );
        let after = snapshot(&d)?;
        ensure!(
            before == after,
            "{what}: the installer changed the disk:\n{}",
            diff(&before, &after)
        );
        d.terminate()?;
        Ok(())
    };

    flip(&payload)?;
    fails("flipped bytes", "SHA-256")?;
    flip(&payload)?; // flipped back: whole again

    let mut tail = Vec::new();
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&payload)?;
    file.seek(SeekFrom::Start(len - 4096))?;
    file.read_to_end(&mut tail)?;
    file.set_len(len - 4096)?;
    drop(file);
    fails("truncated", "the manifest says")?;
    let mut file = fs::OpenOptions::new().append(true).open(&payload)?;
    file.write_all(&tail)?;
    drop(file);

    d.boot()?;
    let out = d.run(&echo_hi())?;
    ran_echo_hi(&out)?;
    check_installed(&d)
}
