//! `nixos-wsl tarball verify` against Microsoft's distribution validator
//! (`distributions/validate-modern.py` in microsoft/WSL): one clean `.wsl`-style tarball, and one
//! tarball per rule that breaks exactly that rule, each checked for the finding, its severity
//! and the exit status (errors exit 1; warnings exit 0, or 1 with `--strict`).
//!
//! Unprivileged: the tarballs are written byte by byte with the crate's header encoder, so
//! owners, modes and PAX records are whatever the case needs. With
//! `NIXOS_WSL_VERIFY_FIXTURES=DIR` set, the tarballs are kept in DIR (to run Microsoft's script
//! on them: `validate-modern.py --tar DIR/NAME.tar`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nixos_wsl::tar::header::{Entry, Kind, BLOCK};
use nixos_wsl::tar::writer;

const CLI: &str = env!("CARGO_BIN_EXE_nixos-wsl");

/// One archive member.
#[derive(Clone, Debug)]
struct Item {
    path: String,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    link: String,
    data: Vec<u8>,
    /// Names of `SCHILY.xattr.*` PAX records to attach.
    xattrs: Vec<String>,
}

fn item(kind: Kind, path: &str, mode: u32) -> Item {
    Item {
        path: format!("./{}", path.trim_start_matches('/')),
        kind,
        mode,
        uid: 0,
        gid: 0,
        link: String::new(),
        data: Vec::new(),
        xattrs: Vec::new(),
    }
}

fn dir(path: &str) -> Item {
    item(Kind::Directory, path, 0o755)
}

fn file(path: &str, mode: u32, data: &[u8]) -> Item {
    let mut i = item(Kind::Regular, path, mode);
    i.data = data.to_vec();
    i
}

fn symlink(path: &str, target: &str) -> Item {
    let mut i = item(Kind::Symlink, path, 0o777);
    i.link = target.to_string();
    i
}

/// The first 64 bytes of a little-endian 64-bit ELF executable for `machine`: all that
/// libmagic (and so Microsoft's validator) looks at.
fn elf(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little-endian
    h[6] = 1; // EI_VERSION
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
    h
}

const X86_64: u16 = 62;
const AARCH64: u16 = 183;

const DIST_CONF: &str = "\
[oobe]
defaultUid = 1000
defaultName = NixOS

[shortcut]
icon = /usr/share/wsl/nixos.ico

[windowsterminal]
profileTemplate = /usr/lib/wsl/terminal-profile.json
";

const PASSWD: &str = "root:x:0:0:System administrator:/root:/bin/bash\n";

/// A tarball's members, by path.
#[derive(Clone)]
struct Fixture(Vec<Item>);

impl Fixture {
    /// A modern distribution that Microsoft's validator passes without an error or warning.
    fn clean() -> Fixture {
        Fixture(vec![
            dir("/"),
            dir("/bin"),
            file("/bin/bash", 0o755, &elf(X86_64)),
            file("/bin/sh", 0o755, &elf(X86_64)),
            dir("/etc"),
            file("/etc/passwd", 0o644, PASSWD.as_bytes()),
            file("/etc/shadow", 0o600, b"root:!:1::::::\n"),
            file("/etc/wsl.conf", 0o644, b"[boot]\nsystemd = true\n"),
            file("/etc/wsl-distribution.conf", 0o644, DIST_CONF.as_bytes()),
            dir("/root"),
            dir("/sbin"),
            file("/sbin/init", 0o755, &elf(X86_64)),
            dir("/usr"),
            dir("/usr/lib"),
            dir("/usr/lib/wsl"),
            file("/usr/lib/wsl/terminal-profile.json", 0o640, b"{}\n"),
            dir("/usr/share"),
            dir("/usr/share/wsl"),
            file("/usr/share/wsl/nixos.ico", 0o644, b"\0\0\x01\0icon"),
        ])
    }

    fn find(&mut self, path: &str) -> &mut Item {
        let want = format!("./{}", path.trim_start_matches('/'));
        self.0
            .iter_mut()
            .find(|i| i.path == want)
            .unwrap_or_else(|| panic!("fixture has no {path}"))
    }

    /// Adds `item`, replacing a member of the same path.
    fn set(mut self, item: Item) -> Fixture {
        self.0.retain(|i| i.path != item.path);
        self.0.push(item);
        self
    }

    fn remove(mut self, path: &str) -> Fixture {
        let want = format!("./{}", path.trim_start_matches('/'));
        let before = self.0.len();
        self.0.retain(|i| i.path != want);
        assert!(self.0.len() < before, "fixture has no {path}");
        self
    }

    fn edit(mut self, path: &str, f: impl FnOnce(&mut Item)) -> Fixture {
        f(self.find(path));
        self
    }

    fn text(self, path: &str, text: &str) -> Fixture {
        self.edit(path, |i| i.data = text.as_bytes().to_vec())
    }

    /// The distribution conf with `from` replaced by `to`.
    fn conf(self, from: &str, to: &str) -> Fixture {
        assert!(DIST_CONF.contains(from), "{from:?}");
        self.text("/etc/wsl-distribution.conf", &DIST_CONF.replace(from, to))
    }

    /// The tar stream: a PAX header before members with xattrs, ustar headers otherwise.
    fn tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for i in &self.0 {
            let mut e = Entry::new(i.kind, i.path.as_bytes().to_vec());
            e.mode = i.mode;
            e.uid = i.uid;
            e.gid = i.gid;
            e.link = i.link.as_bytes().to_vec();
            e.size = i.data.len() as u64;
            e.mtime = 1;
            if !i.xattrs.is_empty() {
                let keys: Vec<String> = i
                    .xattrs
                    .iter()
                    .map(|x| format!("SCHILY.xattr.{x}"))
                    .collect();
                let mut pax = tar::Builder::new(Vec::new());
                pax.append_pax_extensions(
                    keys.iter()
                        .map(|k| (k.as_str(), &b"system_u:object_r:etc_t:s0"[..])),
                )
                .unwrap();
                let bytes = pax.into_inner().unwrap();
                out.extend_from_slice(&bytes[..bytes.len() - 2 * BLOCK]);
            }
            out.extend_from_slice(&writer::encode(&e).unwrap());
            out.extend_from_slice(&i.data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
}

impl Outcome {
    /// The `warning:` and `error:` lines.
    fn findings(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("warning: ") || l.starts_with("error: "))
            .collect()
    }
}

/// Writes the fixture to a file named after the case and runs `nixos-wsl tarball verify`.
fn verify(name: &str, fx: &Fixture, args: &[&str]) -> Outcome {
    static N: AtomicU32 = AtomicU32::new(0);
    let (dir, keep) = match std::env::var_os("NIXOS_WSL_VERIFY_FIXTURES") {
        Some(d) => (PathBuf::from(d), true),
        None => (
            std::env::temp_dir().join(format!(
                "nixos-wsl-verify-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            )),
            false,
        ),
    };
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.tar"));
    fs::write(&path, fx.tar()).unwrap();
    let out = Command::new(CLI)
        .args(["tarball", "verify"])
        .args(args)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {CLI}: {e}"));
    if !keep {
        let _ = fs::remove_dir_all(&dir);
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.stderr.is_empty(),
        "{name}: stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Outcome {
        code: out.status.code(),
        stdout,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sev {
    Error,
    Warning,
}

/// Verifies `fx` (a `.wsl` tarball unless `args` say otherwise) and checks that it yields the
/// `expected` findings, all of severity `sev` and nothing else, with the exit status that
/// severity calls for, with and without `--strict`.
fn expect(name: &str, fx: Fixture, args: &[&str], sev: Sev, expected: &[&str]) {
    let tag = match sev {
        Sev::Error => "error: ",
        Sev::Warning => "warning: ",
    };
    let plain = verify(name, &fx, args);
    let findings = plain.findings();
    for want in expected {
        assert!(
            findings
                .iter()
                .any(|l| l.starts_with(tag) && l.contains(want)),
            "{name}: expected a {tag}line containing {want:?}, got:\n{}",
            plain.stdout
        );
    }
    for line in &findings {
        assert!(
            line.starts_with(tag) && expected.iter().any(|w| line.contains(w)),
            "{name}: unexpected finding {line:?} (the case should break one rule only):\n{}",
            plain.stdout
        );
    }
    let code = match sev {
        Sev::Error => 1,
        Sev::Warning => 0,
    };
    assert_eq!(plain.code, Some(code), "{name}:\n{}", plain.stdout);
    let strict: Vec<&str> = args.iter().copied().chain(["--strict"]).collect();
    let strict = verify(name, &fx, &strict);
    assert_eq!(strict.code, Some(1), "{name} --strict:\n{}", strict.stdout);
}

const MODERN: &[&str] = &["--modern"];

#[test]
fn clean_modern_tarball_passes_strict() {
    let out = verify(
        "clean",
        &Fixture::clean(),
        &["--modern", "--strict", "--arch", "x86_64"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.findings().is_empty(), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("summary: 0 errors, 0 warnings\n"),
        "{}",
        out.stdout
    );
    for ok in [
        "ok: /bin/sh is a 64-bit x86-64 ELF executable",
        "ok: \"/sbin/init\" (boot.systemd=true) is a 64-bit x86-64 ELF executable",
        "ok: /etc/passwd parses; uid 0 is root",
        "ok: root's shell /bin/bash resolves to /bin/bash (ELF)",
    ] {
        assert!(out.stdout.contains(ok), "{ok:?} missing:\n{}", out.stdout);
    }
}

#[test]
fn aarch64_binaries_need_arch_aarch64() {
    let fx = ["/bin/sh", "/bin/bash", "/sbin/init"]
        .iter()
        .fold(Fixture::clean(), |fx, p| {
            fx.edit(p, |i| i.data = elf(AARCH64))
        });
    let out = verify(
        "aarch64",
        &fx,
        &["--modern", "--strict", "--arch", "aarch64"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    expect(
        "aarch64-as-x86",
        fx,
        MODERN,
        Sev::Error,
        &[
            "/bin/sh is a 64-bit aarch64 ELF file",
            "/bin/bash is a 64-bit aarch64 ELF file",
            "\"/sbin/init\" (boot.systemd=true) is a 64-bit aarch64 ELF file",
        ],
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--arch", "arm64", "x.tar"][..],
        &["--arch"],
        &["--bogus", "x"],
    ] {
        let out = Command::new(CLI)
            .args(["tarball", "verify"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

// Rule 1: /etc/wsl-distribution.conf.

#[test]
fn distribution_conf_missing() {
    let fx = Fixture::clean().remove("/etc/wsl-distribution.conf");
    expect(
        "dist-conf-missing",
        fx.clone(),
        MODERN,
        Sev::Error,
        &["/etc/wsl-distribution.conf is not in the tarball"],
    );
    // Without --modern (a tarball for `wsl --import`) it is optional.
    let out = verify("dist-conf-missing-import", &fx, &["--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.findings().is_empty(), "{}", out.stdout);
}

#[test]
fn distribution_conf_mode() {
    let fx = Fixture::clean().edit("/etc/wsl-distribution.conf", |i| i.mode = 0o666);
    expect(
        "dist-conf-mode",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/wsl-distribution.conf has mode 0666"],
    );
}

#[test]
fn distribution_conf_owner() {
    let fx = Fixture::clean().edit("/etc/wsl-distribution.conf", |i| i.uid = 1000);
    expect(
        "dist-conf-owner",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/wsl-distribution.conf is owned by 1000:0"],
    );
}

#[test]
fn distribution_conf_unknown_key() {
    let fx = Fixture::clean().conf("defaultName = NixOS\n", "defaultName = NixOS\nbogus = 1\n");
    expect(
        "dist-conf-key",
        fx,
        MODERN,
        Sev::Error,
        &[
            "keys Microsoft's validator rejects: oobe.bogus",
            "Unknown key 'oobe.bogus' in /etc/wsl-distribution.conf:4",
        ],
    );
}

#[test]
fn distribution_conf_duplicate_key() {
    let fx = Fixture::clean().conf(
        "defaultName = NixOS\n",
        "defaultName = NixOS\ndefaultname = x\n",
    );
    // Python's configparser raises on it; WSL ignores the second one.
    let out = verify("dist-conf-duplicate", &fx, MODERN);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.findings(),
        [
            "warning: /etc/wsl-distribution.conf:4: key 'oobe.defaultname' already set on line 3; WSL ignores this one",
            "error: /etc/wsl-distribution.conf: Microsoft's validator (Python configparser) cannot read it: line 4: option \"defaultname\" appears twice in its section (DuplicateOptionError)",
        ],
        "{}",
        out.stdout
    );
}

// Rule 2: oobe.command.

#[test]
fn oobe_command_missing() {
    let fx = Fixture::clean().conf("[oobe]\n", "[oobe]\ncommand = /usr/lib/wsl/oobe.sh\n");
    expect(
        "oobe-missing",
        fx,
        MODERN,
        Sev::Error,
        &["\"/usr/lib/wsl/oobe.sh\" (oobe.command) is not in the tarball"],
    );
}

#[test]
fn oobe_command_outside_usr_lib_wsl() {
    let fx = Fixture::clean()
        .conf("[oobe]\n", "[oobe]\ncommand = /usr/local/bin/oobe\n")
        .set(dir("/usr/local"))
        .set(dir("/usr/local/bin"))
        .set(file("/usr/local/bin/oobe", 0o755, b"#!/bin/sh\n"));
    expect(
        "oobe-outside",
        fx,
        MODERN,
        Sev::Warning,
        &["oobe.command \"/usr/local/bin/oobe\" is not under /usr/lib/wsl or /usr/libexec/wsl"],
    );
}

#[test]
fn oobe_command_symlink_is_checked_as_a_link() {
    let fx = Fixture::clean()
        .conf("[oobe]\n", "[oobe]\ncommand = /usr/lib/wsl/oobe\n")
        .set(file("/usr/lib/wsl/oobe-real", 0o755, b"#!/bin/sh\n"))
        .set(symlink("/usr/lib/wsl/oobe", "oobe-real"));
    expect(
        "oobe-symlink",
        fx,
        MODERN,
        Sev::Warning,
        &["\"/usr/lib/wsl/oobe\" (oobe.command) is a symlink to \"oobe-real\" (mode 0777)"],
    );
}

// Rule 3: oobe.defaultUid.

#[test]
fn default_uid_not_1000() {
    let fx = Fixture::clean().conf("defaultUid = 1000", "defaultUid = 1001");
    expect(
        "default-uid-1001",
        fx,
        MODERN,
        Sev::Warning,
        &["oobe.defaultUid is \"1001\"; Microsoft's validator wants 1000"],
    );
}

#[test]
fn default_uid_already_in_passwd() {
    let fx = Fixture::clean().text(
        "/etc/passwd",
        &format!("{PASSWD}nixos:x:1000:100::/home/nixos:/bin/bash\n"),
    );
    expect(
        "default-uid-taken",
        fx,
        MODERN,
        Sev::Warning,
        &["/etc/passwd already has an entry for oobe.defaultUid 1000"],
    );
}

// Rule 4: shortcut.icon.

#[test]
fn icon_missing() {
    let fx = Fixture::clean().remove("/usr/share/wsl/nixos.ico");
    expect(
        "icon-missing",
        fx,
        MODERN,
        Sev::Error,
        &["\"/usr/share/wsl/nixos.ico\" (shortcut.icon) is not in the tarball"],
    );
}

#[test]
fn icon_too_big() {
    let fx = Fixture::clean().edit("/usr/share/wsl/nixos.ico", |i| {
        i.data = vec![0u8; 1_300_000]
    });
    expect(
        "icon-big",
        fx,
        MODERN,
        Sev::Error,
        &["\"/usr/share/wsl/nixos.ico\" (shortcut.icon) is 1300000 bytes, over Microsoft's 1 MiB limit"],
    );
}

#[test]
fn icon_outside_wsl_dirs() {
    let fx = Fixture::clean()
        .conf("/usr/share/wsl/nixos.ico", "/usr/share/nixos.ico")
        .set(file("/usr/share/nixos.ico", 0o644, b"icon"));
    expect(
        "icon-outside",
        fx,
        MODERN,
        Sev::Warning,
        &["shortcut.icon \"/usr/share/nixos.ico\" is not under /usr/lib/wsl or /usr/share/wsl"],
    );
}

#[test]
fn icon_not_configured() {
    let fx = Fixture::clean().conf("icon = /usr/share/wsl/nixos.ico\n", "enabled = true\n");
    expect(
        "icon-none",
        fx,
        MODERN,
        Sev::Warning,
        &["/etc/wsl-distribution.conf has no shortcut.icon"],
    );
}

// Rule 5: windowsterminal.profileTemplate.

#[test]
fn profile_template_mode() {
    let fx = Fixture::clean().edit("/usr/lib/wsl/terminal-profile.json", |i| i.mode = 0o644);
    expect(
        "profile-mode",
        fx,
        MODERN,
        Sev::Warning,
        &["\"/usr/lib/wsl/terminal-profile.json\" (windowsterminal.profileTemplate) has mode 0644"],
    );
}

#[test]
fn profile_template_outside_usr_lib_wsl() {
    let fx = Fixture::clean()
        .conf(
            "/usr/lib/wsl/terminal-profile.json",
            "/usr/share/wsl/terminal-profile.json",
        )
        .set(file("/usr/share/wsl/terminal-profile.json", 0o640, b"{}"));
    expect(
        "profile-outside",
        fx,
        MODERN,
        Sev::Warning,
        &["windowsterminal.profileTemplate \"/usr/share/wsl/terminal-profile.json\" is not under /usr/lib/wsl"],
    );
}

// Rules 6 to 8: /etc/wsl.conf.

#[test]
fn wsl_conf_key_microsoft_does_not_know() {
    let fx = Fixture::clean().text(
        "/etc/wsl.conf",
        "[boot]\nsystemd = true\ninitTimeout = 10000\n",
    );
    expect(
        "wsl-conf-key-modern",
        fx.clone(),
        MODERN,
        Sev::Error,
        &["/etc/wsl.conf has keys Microsoft's validator rejects: boot.inittimeout"],
    );
    // For `wsl --import`, WSL's own key list decides; Microsoft's is a warning.
    expect(
        "wsl-conf-key-import",
        fx,
        &[],
        Sev::Warning,
        &["/etc/wsl.conf has keys WSL reads but Microsoft's validator rejects: boot.inittimeout"],
    );
}

#[test]
fn wsl_conf_key_nobody_knows() {
    let fx = Fixture::clean().text(
        "/etc/wsl.conf",
        "[boot]\nsystemd = true\n[nixos]\nshell = x\n",
    );
    expect(
        "wsl-conf-unknown-modern",
        fx.clone(),
        MODERN,
        Sev::Error,
        &[
            "Unknown key 'nixos.shell' in /etc/wsl.conf:4",
            "/etc/wsl.conf has keys Microsoft's validator rejects: nixos.shell",
        ],
    );
    expect(
        "wsl-conf-unknown-import",
        fx,
        &[],
        Sev::Error,
        &["Unknown key 'nixos.shell' in /etc/wsl.conf:4"],
    );
}

#[test]
fn systemd_false_still_needs_sbin_init() {
    let fx = Fixture::clean()
        .text("/etc/wsl.conf", "[boot]\nsystemd = false\n")
        .remove("/sbin/init");
    expect(
        "systemd-false-no-init",
        fx,
        MODERN,
        Sev::Error,
        &["\"/sbin/init\" (boot.systemd=false) is not in the tarball"],
    );
}

#[test]
fn sbin_init_not_elf() {
    let fx = Fixture::clean().edit("/sbin/init", |i| i.data = b"#!/bin/sh\nexec foo\n".to_vec());
    expect(
        "init-script",
        fx,
        MODERN,
        Sev::Error,
        &["\"/sbin/init\" (boot.systemd=true) is not an ELF file"],
    );
}

#[test]
fn sbin_init_wrong_arch() {
    let fx = Fixture::clean().edit("/sbin/init", |i| i.data = elf(AARCH64));
    expect(
        "init-aarch64",
        fx,
        &["--modern", "--arch", "x86_64"],
        Sev::Error,
        &["\"/sbin/init\" (boot.systemd=true) is a 64-bit aarch64 ELF file; Microsoft's validator wants a 64-bit x86_64 ELF"],
    );
}

#[test]
fn sbin_init_through_symlinks() {
    // Followed like the kernel would: the NixOS layout, /sbin/init into the store.
    let fx = Fixture::clean()
        .remove("/sbin/init")
        .set(symlink(
            "/sbin/init",
            "../nix/store/abc-systemd/lib/systemd/systemd",
        ))
        .set(dir("/nix"))
        .set(dir("/nix/store"))
        .set(dir("/nix/store/abc-systemd"))
        .set(dir("/nix/store/abc-systemd/lib"))
        .set(dir("/nix/store/abc-systemd/lib/systemd"))
        .set(file(
            "/nix/store/abc-systemd/lib/systemd/systemd",
            0o555,
            &elf(X86_64),
        ));
    let out = verify("init-symlink", &fx, &["--modern", "--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

#[test]
fn user_default_is_discouraged() {
    let fx = Fixture::clean().text(
        "/etc/wsl.conf",
        "[boot]\nsystemd = true\n[user]\ndefault = root\n",
    );
    expect(
        "user-default",
        fx,
        MODERN,
        Sev::Warning,
        &["/etc/wsl.conf sets user.default=root, which Microsoft's validator discourages"],
    );
}

// Rule 9: /etc/passwd.

#[test]
fn passwd_missing() {
    let fx = Fixture::clean().remove("/etc/passwd");
    expect(
        "passwd-missing",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd is not in the tarball", "no /etc/passwd"],
    );
}

#[test]
fn passwd_malformed_line() {
    let fx = Fixture::clean().text("/etc/passwd", &format!("{PASSWD}nobody:x:65534\n"));
    expect(
        "passwd-malformed",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd:2: invalid entry \"nobody:x:65534\""],
    );
}

#[test]
fn passwd_blank_line() {
    let fx = Fixture::clean().text(
        "/etc/passwd",
        &format!("{PASSWD}\nnobody:x:65534:65534::/:/bin/false\n"),
    );
    expect(
        "passwd-blank",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd:2: invalid entry \"\""],
    );
}

#[test]
fn passwd_duplicate_uid() {
    let fx = Fixture::clean().text(
        "/etc/passwd",
        &format!("{PASSWD}a:x:5:5::/:/bin/false\nb:x:5:5::/:/bin/false\n"),
    );
    expect(
        "passwd-duplicate",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd:3: uid 5 is already used on line 2"],
    );
}

#[test]
fn passwd_without_root() {
    let fx = Fixture::clean().text("/etc/passwd", "nobody:x:65534:65534::/:/bin/false\n");
    expect(
        "passwd-no-root",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd has no uid 0 entry"],
    );
}

#[test]
fn passwd_uid_0_not_root() {
    let fx = Fixture::clean().text("/etc/passwd", "toor:x:0:0::/root:/bin/bash\n");
    expect(
        "passwd-toor",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/passwd:1: uid 0 is named \"toor\", not root"],
    );
}

#[test]
fn passwd_mode() {
    let fx = Fixture::clean().edit("/etc/passwd", |i| i.mode = 0o600);
    expect(
        "passwd-mode",
        fx,
        MODERN,
        Sev::Warning,
        &["/etc/passwd has mode 0600"],
    );
}

// Rule 10: /etc/shadow.

#[test]
fn shadow_missing() {
    let fx = Fixture::clean().remove("/etc/shadow");
    expect(
        "shadow-missing",
        fx,
        MODERN,
        Sev::Error,
        &["/etc/shadow is not in the tarball"],
    );
}

#[test]
fn shadow_mode() {
    let fx = Fixture::clean().edit("/etc/shadow", |i| i.mode = 0o644);
    expect(
        "shadow-mode",
        fx,
        MODERN,
        Sev::Warning,
        &["/etc/shadow has mode 0644; Microsoft's validator wants 0640 or 0600 or 0000"],
    );
    // Its group is not checked (shadow is often root:shadow).
    let fx = Fixture::clean().edit("/etc/shadow", |i| i.gid = 42);
    let out = verify("shadow-group", &fx, &["--modern", "--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

// Rules 11 and 12: /bin/bash and /bin/sh.

#[test]
fn sh_not_elf() {
    let fx = Fixture::clean().edit("/bin/sh", |i| i.data = b"#!/bin/bash\n".to_vec());
    expect(
        "sh-script",
        fx,
        MODERN,
        Sev::Error,
        &["/bin/sh is not an ELF file"],
    );
}

#[test]
fn sh_missing() {
    let fx = Fixture::clean().remove("/bin/sh");
    expect(
        "sh-missing",
        fx,
        MODERN,
        Sev::Error,
        &["/bin/sh is not in the tarball"],
    );
}

#[test]
fn bash_not_elf() {
    let fx = Fixture::clean().edit("/bin/bash", |i| i.data = b"#!/bin/sh\n".to_vec());
    expect(
        "bash-script",
        fx,
        MODERN,
        Sev::Error,
        &["/bin/bash is not an ELF file"],
    );
}

#[test]
fn bash_is_optional() {
    let fx = Fixture::clean()
        .remove("/bin/bash")
        .text("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    let out = verify("bash-missing", &fx, &["--modern", "--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

#[test]
fn sh_mode() {
    let fx = Fixture::clean().edit("/bin/sh", |i| i.mode = 0o4755);
    expect(
        "sh-mode",
        fx,
        MODERN,
        Sev::Warning,
        &["/bin/sh has mode 4755"],
    );
}

// Rule 13: discouraged systemd units.

fn resolved_enabled() -> Fixture {
    Fixture::clean()
        .set(dir("/etc/systemd"))
        .set(dir("/etc/systemd/system"))
        .set(dir("/etc/systemd/system/multi-user.target.wants"))
        .set(symlink(
            "/etc/systemd/system/multi-user.target.wants/systemd-resolved.service",
            "/lib/systemd/system/systemd-resolved.service",
        ))
}

#[test]
fn discouraged_unit_enabled() {
    expect(
        "unit-enabled",
        resolved_enabled(),
        MODERN,
        Sev::Warning,
        &["/etc/systemd/system/multi-user.target.wants/systemd-resolved.service enables systemd-resolved.service"],
    );
}

#[test]
fn discouraged_unit_masked() {
    let fx = resolved_enabled().set(symlink(
        "/etc/systemd/system/systemd-resolved.service",
        "/dev/null",
    ));
    let out = verify("unit-masked", &fx, &["--modern", "--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.findings().is_empty(), "{}", out.stdout);
}

// Rule 14: xattrs WSL1 cannot store.

#[test]
fn selinux_xattr() {
    let fx = Fixture::clean().edit("/etc/passwd", |i| {
        i.xattrs = vec!["security.selinux".into()]
    });
    expect(
        "xattr-selinux",
        fx,
        MODERN,
        Sev::Warning,
        &["extended attributes WSL1 cannot store: security.selinux (1 entry), e.g. on ./etc/passwd"],
    );
    // Other xattrs are fine.
    let fx = Fixture::clean().edit("/etc/passwd", |i| i.xattrs = vec!["user.note".into()]);
    let out = verify("xattr-user", &fx, &["--modern", "--strict"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

// Our own rules, kept.

#[test]
fn hard_links_are_refused() {
    let mut link = item(Kind::HardLink, "/bin/sh2", 0o755);
    link.link = "./bin/sh".into();
    expect(
        "hard-link",
        Fixture::clean().set(link),
        MODERN,
        Sev::Error,
        &["1 hard link(s)"],
    );
}
