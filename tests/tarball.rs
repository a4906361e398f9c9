//! Integration tests of the tarball tool (`nixos-wsl tarball ...`) and the installer
//! (`nixos-wsl-installer --root DIR`). They run as root without the WSL simulator; the installer
//! only ever works inside temporary directories, never on this machine's `/`.
//!
//! The full-disk test mounts a small tmpfs and needs root: without root it is skipped locally
//! and fails under CI (`CI` set).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use nixos_wsl::installer::extract::{open_dir, Extractor, Owners};
use nixos_wsl::tar::header::{Entry, Kind};
use nixos_wsl::tar::reader::Reader;
use nixos_wsl::tar::writer::Writer;

const CLI: &str = env!("CARGO_BIN_EXE_nixos-wsl");
const INSTALLER: &str = env!("CARGO_BIN_EXE_nixos-wsl-installer");

/// A temporary directory, removed (after unmounting anything mounted on it) when dropped.
struct TempDir {
    path: PathBuf,
    mounts: Vec<PathBuf>,
}

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "nixos-wsl-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir {
            path,
            mounts: Vec::new(),
        }
    }

    fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root-only tests: skipped without root, but a failure under CI.
fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} must run as root in CI"
    );
    eprintln!("skipping {test}: needs root");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cli(args: &[&OsStr]) -> Output {
    run(Command::new(CLI).args(args))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// A small root filesystem: hard links, symlinks, a setuid file, a long path, an empty
/// directory, a fifo, `/etc/passwd` with `shell` as root's shell, and `/etc/wsl.conf`.
fn make_source(dir: &Path, shell: &str) {
    let w = |p: &str, data: &[u8], mode: u32| {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    w(
        "etc/passwd",
        format!("root:x:0:0:root:/root:{shell}\nnobody:x:65534:65534::/:/bin/false\n").as_bytes(),
        0o644,
    );
    w("etc/group", b"root:x:0:\n", 0o644);
    w("etc/shadow", b"root:!:1::::::\n", 0o600);
    w(
        "etc/wsl.conf",
        b"[boot]\nsystemd = false\n[user]\ndefault = root\n",
        0o644,
    );
    w("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
    w("usr/bin/suid", b"setuid", 0o4755);
    w("usr/share/big", &vec![b'z'; 300_000], 0o444);
    let long = format!("usr/share/{}/{}", "d".repeat(120), "f".repeat(90));
    w(&long, b"long path", 0o644);
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool-again")).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/share/tool-third")).unwrap();
    symlink("../usr/bin/tool", dir.join("etc/tool-link")).unwrap();
    symlink("/usr/share", dir.join("share")).unwrap();
    fs::create_dir_all(dir.join("var/empty")).unwrap();
    fs::create_dir_all(dir.join("root")).unwrap();
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::mkfifo(
        &dir.join("var/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    if let Some(sh) = shell.strip_prefix('/') {
        // Root's shell: bash of this machine, reached through a symlink so argv[0] is visible.
        let p = dir.join(sh);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&p);
        symlink("/bin/bash", &p).unwrap();
    }
}

fn build(src: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<&OsStr> = vec![
        os("tarball"),
        os("build"),
        os("--source"),
        src.as_os_str(),
        os("--output"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(os));
    ok(cli(&args));
}

/// A stand-in for the installer binary inside the tarball (the tests run the real one from
/// the build directory with `--root`): a minimal static-looking ELF header.
fn fake_installer(dir: &Path) -> PathBuf {
    let p = dir.join("fake-installer");
    let mut data = vec![0u8; 64];
    data[..6].copy_from_slice(b"\x7fELF\x02\x01");
    fs::write(&p, data).unwrap();
    p
}

fn wrap(rootfs: &Path, installer: &Path, out: &Path) -> Output {
    cli(&[
        os("tarball"),
        os("installer"),
        os("--rootfs"),
        rootfs.as_os_str(),
        os("--installer"),
        installer.as_os_str(),
        os("--output"),
        out.as_os_str(),
    ])
}

/// "Imports" a tarball the way WSL does (bsdtar there, GNU tar here), as root keeping owners.
fn import(tarball: &Path, root: &Path) {
    fs::create_dir_all(root).unwrap();
    ok(run(Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(root)));
}

fn installer(root: &Path, args: &[&str]) -> Output {
    run(Command::new(INSTALLER)
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("NIXOS_WSL_INSTALLER_TEST_STOP_AFTER"))
}

/// Everything observable about a tree except directory mtimes (the commit touches /etc and
/// the root): type, mode, owner, size, content, link target, mtime, and hard-link groups.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<(u64, u64), String>,
    ) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = md.file_type();
            let mut desc = format!(
                "mode={:o} owner={}:{}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            );
            if ft.is_dir() {
                desc.push_str(" dir");
                out.insert(rel, desc);
                walk(root, &p, out, inodes);
                continue;
            }
            if ft.is_symlink() {
                desc.push_str(&format!(
                    " symlink={}",
                    fs::read_link(&p).unwrap().display()
                ));
            } else if ft.is_file() {
                let data = fs::read(&p).unwrap();
                let sum: u64 = data
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| (i as u64 + 1) * u64::from(b))
                    .sum();
                desc.push_str(&format!(
                    " file size={} sum={sum} mtime={}",
                    data.len(),
                    md.mtime()
                ));
                if md.nlink() > 1 {
                    let first = inodes
                        .entry((md.dev(), md.ino()))
                        .or_insert_with(|| rel.clone());
                    desc.push_str(&format!(" inode-of={first}"));
                }
            } else if ft.is_fifo() {
                desc.push_str(" fifo");
            } else {
                desc.push_str(" other");
            }
            out.insert(rel, desc);
        }
    }
    walk(root, root, &mut out, &mut inodes);
    out
}

fn entries(tarball: &Path) -> Vec<Entry> {
    let stream = nixos_wsl::tar::decompress::open(fs::File::open(tarball).unwrap()).unwrap();
    let mut r = Reader::new(stream);
    let mut v = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        v.push(e);
    }
    v
}

/// A rootfs and its installer tarball imported into `<tmp>/root`.
struct Imported {
    tmp: TempDir,
    root: PathBuf,
    rootfs: PathBuf,
}

fn imported(tag: &str) -> Imported {
    let tmp = TempDir::new(tag);
    let src = tmp.join("src");
    make_source(&src, "/bin/fakesh");
    let rootfs = tmp.join("rootfs.tar.gz");
    build(&src, &rootfs, &[]);
    let inst = tmp.join("installer.tar.gz");
    ok(wrap(&rootfs, &fake_installer(&tmp.path), &inst));
    let root = tmp.join("root");
    import(&inst, &root);
    Imported { tmp, root, rootfs }
}

/// What a complete install of `rootfs` looks like (extracted by GNU tar as the reference).
fn reference(rootfs: &Path, tmp: &TempDir) -> BTreeMap<String, String> {
    let r = tmp.join("reference");
    import(rootfs, &r);
    // The installer's /bin/sh stays behind when the root filesystem has none: WSL's fallback
    // then points at nothing, which is harmless once passwd names the real shell.
    let mut snap = snapshot(&r);
    snap.insert(
        "bin/sh".into(),
        "mode=777 owner=0:0 symlink=/nixos-wsl-installer/nixos-wsl-installer".into(),
    );
    snap
}

#[test]
fn building_twice_gives_identical_bytes() {
    let tmp = TempDir::new("determinism");
    let a = tmp.join("a");
    make_source(&a, "/bin/sh");
    let store = tmp.join("store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12");
    fs::create_dir_all(store.join("bin")).unwrap();
    fs::write(store.join("bin/hello"), b"hello").unwrap();
    let (one, two) = (tmp.join("one.tar.gz"), tmp.join("two.tar.gz"));
    let opts = |out: &Path| nixos_wsl::tarball::build::BuildOptions {
        source: a.clone(),
        store_paths: vec![store.clone()],
        output: out.to_path_buf(),
        mtime: 1,
        keep_owners: false,
        level: 6,
        ..Default::default()
    };
    nixos_wsl::tarball::build::build(&opts(&one)).unwrap();
    // Change everything that must not matter: mtimes, atimes, the order files were created.
    let t = nix::sys::time::TimeSpec::new(1_700_000_000, 0);
    nix::sys::stat::utimensat(
        None,
        &a.join("etc/passwd"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    fs::remove_file(a.join("etc/group")).unwrap();
    fs::write(a.join("etc/group"), b"root:x:0:\n").unwrap();
    fs::set_permissions(a.join("etc/group"), fs::Permissions::from_mode(0o644)).unwrap();
    nixos_wsl::tarball::build::build(&opts(&two)).unwrap();
    assert_eq!(
        fs::read(&one).unwrap(),
        fs::read(&two).unwrap(),
        "two builds differ"
    );

    // The store path lands under /nix/store, with synthesised parents.
    let names: Vec<String> = entries(&one).iter().map(|e| text(&e.path)).collect();
    assert!(
        names.contains(&"./nix/".to_string()) && names.contains(&"./nix/store/".to_string()),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("-hello-2.12/bin/hello")));
    // Sorted like a directory walk, everything root-owned with the fixed mtime.
    let mut sorted = names.clone();
    sorted.sort_by(|x, y| {
        x.trim_end_matches('/')
            .split('/')
            .cmp(y.trim_end_matches('/').split('/'))
    });
    assert_eq!(names, sorted);
    assert!(entries(&one)
        .iter()
        .all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 1));

    // The CLI does the same, with SOURCE_DATE_EPOCH as the default mtime.
    let src_list = tmp.join("store-paths");
    fs::write(&src_list, b"").unwrap();
    let c1 = tmp.join("c1.tar.gz");
    ok(run(Command::new(CLI)
        .args([
            os("tarball"),
            os("build"),
            os("--source"),
            a.as_os_str(),
            os("--output"),
            c1.as_os_str(),
            os("--store-paths"),
            src_list.as_os_str(),
        ])
        .env("SOURCE_DATE_EPOCH", "1234")));
    assert!(entries(&c1).iter().all(|e| e.mtime == 1234));
    // GNU tar reads it.
    ok(run(Command::new("tar").arg("-tzf").arg(&c1)));
}

#[test]
fn keep_owners_keeps_numeric_owners() {
    if !require_root("keep_owners_keeps_numeric_owners") {
        return;
    }
    let tmp = TempDir::new("owners");
    let src = tmp.join("src");
    fs::create_dir_all(src.join("home/u")).unwrap();
    fs::write(src.join("home/u/f"), b"x").unwrap();
    nix::unistd::chown(
        &src.join("home/u/f"),
        Some(nix::unistd::Uid::from_raw(1000)),
        Some(nix::unistd::Gid::from_raw(100)),
    )
    .unwrap();
    let (a, b) = (tmp.join("a.tar.gz"), tmp.join("b.tar.gz"));
    build(&src, &a, &[]);
    build(&src, &b, &["--keep-owners"]);
    let f = |t: &Path| {
        entries(t)
            .into_iter()
            .find(|e| e.path.ends_with(b"/f"))
            .unwrap()
    };
    assert_eq!((f(&a).uid, f(&a).gid), (0, 0));
    assert_eq!((f(&b).uid, f(&b).gid), (1000, 100));
}

#[test]
fn hard_links_survive_build_and_extraction() {
    let tmp = TempDir::new("hardlinks");
    let src = tmp.join("src");
    make_source(&src, "/bin/sh");
    let rootfs = tmp.join("rootfs.tar.gz");
    build(&src, &rootfs, &[]);
    let links: Vec<Entry> = entries(&rootfs)
        .into_iter()
        .filter(|e| e.kind == Kind::HardLink)
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.iter().all(|e| e.link == b"./usr/bin/tool"));
    let listing = text(&ok(run(Command::new("tar").arg("-tvzf").arg(&rootfs))).stdout);
    assert_eq!(
        listing.matches(" link to ./usr/bin/tool").count(),
        2,
        "{listing}"
    );

    // Our extractor keeps them.
    let root = tmp.join("ours");
    fs::create_dir(&root).unwrap();
    let stream = nixos_wsl::tar::decompress::open(fs::File::open(&rootfs).unwrap()).unwrap();
    let mut x = Extractor::new(open_dir(&root).unwrap(), Owners::default_for_euid()).unwrap();
    x.extract_all(&mut Reader::new(stream), &mut |_| {}, &mut |_| true)
        .unwrap();
    x.finish().unwrap();
    let ino = |p: &str| fs::metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("usr/bin/tool"), ino("usr/bin/tool-again"));
    assert_eq!(ino("usr/bin/tool"), ino("usr/share/tool-third"));
    assert_eq!(fs::metadata(root.join("usr/bin/tool")).unwrap().nlink(), 3);
    // And the tree is what GNU tar makes of the same tarball.
    let gnu = tmp.join("gnu");
    import(&rootfs, &gnu);
    assert_eq!(snapshot(&root), snapshot(&gnu));
    assert_eq!(
        fs::metadata(root.join("usr/bin/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn installer_tarball_has_no_hard_links_and_verifies() {
    let tmp = TempDir::new("image");
    let src = tmp.join("src");
    make_source(&src, "/bin/sh");
    let rootfs = tmp.join("rootfs.tar.gz");
    build(&src, &rootfs, &[]);
    let out = tmp.join("installer.tar.gz");
    ok(wrap(&rootfs, Path::new(INSTALLER), &out));
    let es = entries(&out);
    assert!(es.iter().all(|e| e.kind != Kind::HardLink));
    let listing = text(&ok(run(Command::new("tar").arg("-tvzf").arg(&out))).stdout);
    assert!(!listing.contains(" link to "), "{listing}");
    assert!(!listing.lines().any(|l| l.starts_with('h')), "{listing}");
    let names: Vec<String> = es.iter().map(|e| text(&e.path)).collect();
    for want in [
        "./bin/sh",
        "./etc/passwd",
        "./etc/group",
        "./etc/shadow",
        "./etc/wsl.conf",
        "./nixos-wsl-installer/nixos-wsl-installer",
        "./nixos-wsl-installer/rootfs.tar.gz",
        "./nixos-wsl-installer/manifest",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // The embedded tarball is the rootfs, byte for byte; wsl.conf is the rootfs's without
    // what cannot apply before it is unpacked ([boot] systemd, [user] default).
    let r = tmp.join("r");
    import(&out, &r);
    assert_eq!(
        fs::read(r.join("nixos-wsl-installer/rootfs.tar.gz")).unwrap(),
        fs::read(&rootfs).unwrap()
    );
    assert_eq!(
        text(&fs::read(r.join("etc/wsl.conf")).unwrap()),
        "[boot]\n[user]\n"
    );
    assert_eq!(
        fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/nixos-wsl-installer/nixos-wsl-installer")
    );
    // Deterministic too.
    let again = tmp.join("again.tar.gz");
    ok(wrap(&rootfs, Path::new(INSTALLER), &again));
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());

    let v = ok(cli(&[os("tarball"), os("verify"), out.as_os_str()]));
    let report = text(&v.stdout);
    assert!(report.contains("ok: no hard links"), "{report}");
    assert!(
        report.contains("root's shell /nixos-wsl-installer/nixos-wsl-installer resolves"),
        "{report}"
    );
    assert!(!report.contains("error:"), "{report}");
    assert!(!report.contains("user.default"), "{report}");
}

#[test]
fn installer_tarball_needs_wsl_conf_and_passwd() {
    let tmp = TempDir::new("needs");
    let src = tmp.join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    let rootfs = tmp.join("rootfs.tar.gz");
    build(&src, &rootfs, &[]);
    let out = wrap(&rootfs, &fake_installer(&tmp.path), &tmp.join("i.tar.gz"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no /etc/wsl.conf"),
        "{}",
        text(&out.stderr)
    );
}

/// One hand-made entry: kind, path, link target, data.
type Item<'a> = (Kind, &'a str, &'a str, &'a [u8]);

/// A gzipped tarball of hand-made entries (for archives our builder would never write).
fn handmade(path: &Path, items: &[Item]) {
    let mut w = Writer::new(nixos_wsl::tarball::build::gzip(
        fs::File::create(path).unwrap(),
        6,
    ));
    for (kind, name, link, data) in items {
        let mut e = Entry::new(*kind, name.as_bytes().to_vec());
        e.link = link.as_bytes().to_vec();
        e.mode = if *kind == Kind::Directory || name.starts_with("./bin/") {
            0o755
        } else {
            0o644
        };
        e.size = data.len() as u64;
        e.mtime = 1;
        w.append(&e, &mut &data[..]).unwrap();
    }
    w.finish().unwrap().finish().unwrap();
}

#[test]
fn verify_refuses_hard_links_unknown_keys_and_bad_distribution_conf() {
    let tmp = TempDir::new("verify");
    // An x86-64 ELF header: what Microsoft's validator (libmagic) wants /bin/sh to be.
    let mut elf = [0u8; 64];
    elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    elf[16] = 2;
    elf[18] = 62;
    elf[20] = 1;
    let sh: &'static [u8] = Box::leak(Box::new(elf));
    let base = |extra: &[Item<'static>]| {
        let mut v: Vec<Item> = vec![
            (Kind::Directory, "./", "", b""),
            (Kind::Directory, "./bin/", "", b""),
            (Kind::Regular, "./bin/sh", "", sh),
            (Kind::Directory, "./etc/", "", b""),
            (
                Kind::Regular,
                "./etc/passwd",
                "",
                b"root:x:0:0::/root:/bin/sh\n",
            ),
            (Kind::Regular, "./etc/shadow", "", b"root:!:1::::::\n"),
        ];
        v.extend_from_slice(extra);
        v
    };
    let verify = |name: &str, items: Vec<Item>| {
        let p = tmp.join(name);
        handmade(&p, &items);
        let out = cli(&[os("tarball"), os("verify"), p.as_os_str()]);
        (out.status.code(), text(&out.stdout))
    };
    let (code, report) = verify(
        "good.tar.gz",
        base(&[(
            Kind::Regular,
            "./etc/wsl.conf",
            "",
            b"[automount]\nroot=/mnt/\n",
        )]),
    );
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("ok: root's shell /bin/sh resolves to /bin/sh (ELF)"),
        "{report}"
    );

    let p = tmp.join("links.tar.gz");
    handmade(&p, &base(&[(Kind::HardLink, "./bin/sh2", "./bin/sh", b"")]));
    let out = cli(&[os("tarball"), os("verify"), p.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("error: 1 hard link(s)"),
        "{}",
        text(&out.stdout)
    );

    let (code, report) = verify(
        "keys.tar.gz",
        base(&[(
            Kind::Regular,
            "./etc/wsl.conf",
            "",
            b"[boot]\nsystemd=false\n[nixos]\nshell=/x\n",
        )]),
    );
    assert_eq!(code, Some(1));
    assert!(
        report.contains("error: Unknown key 'nixos.shell' in /etc/wsl.conf:4"),
        "{report}"
    );

    let (code, report) = verify(
        "syntax.tar.gz",
        base(&[(
            Kind::Regular,
            "./etc/wsl.conf",
            "",
            b"[boot]\nsystem-d=false\n",
        )]),
    );
    assert_eq!(code, Some(1));
    assert!(report.contains("/etc/wsl.conf:2: syntax error"), "{report}");

    let (code, report) = verify(
        "dist.tar.gz",
        base(&[(
            Kind::Regular,
            "./etc/wsl-distribution.conf",
            "",
            b"[oobe]\ndefaultUid=1000\nbogus=1\n",
        )]),
    );
    assert_eq!(code, Some(1));
    assert!(
        report.contains("Unknown key 'oobe.bogus' in /etc/wsl-distribution.conf:3"),
        "{report}"
    );
    assert!(
        !report.contains("must be a root:root 0644"),
        "0644 root:root is fine: {report}"
    );

    let (code, report) = verify(
        "escape.tar.gz",
        base(&[(Kind::Regular, "../../escape", "", b"x")]),
    );
    assert_eq!(code, Some(1));
    assert!(report.contains("escape"), "{report}");

    let (code, report) = verify(
        "noetc.tar.gz",
        vec![
            (Kind::Directory, "./", "", b""),
            (Kind::Regular, "./x", "", b""),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(report.contains("neither /etc nor /bin/sh"), "{report}");
}

fn extract_into(root: &Path, tarball: &Path) -> anyhow::Result<()> {
    let stream = nixos_wsl::tar::decompress::open(fs::File::open(tarball).unwrap()).unwrap();
    let mut x = Extractor::new(open_dir(root).unwrap(), Owners::default_for_euid()).unwrap();
    x.extract_all(&mut Reader::new(stream), &mut |_| {}, &mut |_| true)?;
    x.finish()?;
    Ok(())
}

#[test]
fn extractor_refuses_escapes() {
    let tmp = TempDir::new("escape");
    let outside = tmp.join("outside");
    fs::create_dir(&outside).unwrap();
    let cases: Vec<(&str, Vec<Item>, &str)> = vec![
        (
            "dotdot",
            vec![(Kind::Regular, "./../outside/pwned", "", b"x")],
            "'..'",
        ),
        (
            "deep-dotdot",
            vec![(Kind::Regular, "./a/../../outside/pwned", "", b"x")],
            "'..'",
        ),
        (
            "symlink-then-write",
            vec![
                (Kind::Symlink, "./evil", "../outside", b""),
                (Kind::Regular, "./evil/pwned", "", b"x"),
            ],
            "symlink",
        ),
        (
            "absolute-symlink-then-write",
            vec![
                (Kind::Symlink, "./evil", outside.to_str().unwrap(), b""),
                (Kind::Directory, "./evil/sub/", "", b""),
            ],
            "symlink",
        ),
        (
            "hardlink-outside",
            vec![(Kind::HardLink, "./h", "/etc/shadow", b"")],
            "not an earlier file",
        ),
        (
            "hardlink-dotdot",
            vec![(Kind::HardLink, "./h", "../outside/x", b"")],
            "'..'",
        ),
        (
            "installer-dir",
            vec![(Kind::Regular, "./nixos-wsl-installer/manifest", "", b"x")],
            "belongs to the installer",
        ),
    ];
    for (name, items, why) in cases {
        let p = tmp.join(&format!("{name}.tar.gz"));
        handmade(&p, &items);
        let root = tmp.join(&format!("root-{name}"));
        fs::create_dir(&root).unwrap();
        let err = extract_into(&root, &p).expect_err(name);
        assert!(format!("{err:#}").contains(why), "{name}: {err:#}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{name} wrote outside the root"
        );
    }

    // A symlink already on disk (not from the archive) is not written through either.
    let root = tmp.join("root-disk-symlink");
    fs::create_dir(&root).unwrap();
    symlink(&outside, root.join("link")).unwrap();
    let p = tmp.join("disk.tar.gz");
    handmade(&p, &[(Kind::Regular, "./link/pwned", "", b"x")]);
    let err = extract_into(&root, &p).unwrap_err();
    assert!(
        format!("{err:#}").contains("/link is a symlink; refusing to write through it"),
        "{err:#}"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    // Replacing that symlink itself is fine (it is a path inside the root).
    handmade(&p, &[(Kind::Regular, "./link", "", b"now a file")]);
    extract_into(&root, &p).unwrap();
    assert_eq!(fs::read(root.join("link")).unwrap(), b"now a file");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn install_hands_over_with_the_original_arguments() {
    let t = imported("handover");
    let before = fs::read(t.root.join("etc/passwd")).unwrap();
    assert!(text(&before).contains("/nixos-wsl-installer/nixos-wsl-installer"));
    let out = installer(&t.root, &["-c", "echo \"$0\"; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), "/bin/fakesh");
    // One line on stderr when it is not a terminal.
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nixos-wsl-installer: unpacked NixOS:"),
        "{err}"
    );
    assert!(
        !t.root.join("nixos-wsl-installer").exists(),
        "installer files left behind"
    );
    assert_eq!(snapshot(&t.root), reference(&t.rootfs, &t.tmp));

    // Installed: the next launch (were the installer still root's shell) just hands over,
    // and a login shell stays a login shell under the new shell's name.
    let out = run(Command::new(INSTALLER)
        .arg0("-nixos-wsl-installer")
        .arg("--root")
        .arg(&t.root)
        .args(["-c", "echo \"$0\"; exit 42"]));
    assert_eq!(out.status.code(), Some(42), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().last(), Some("-fakesh"));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    // The shell starts with default signal dispositions: the installer's Rust runtime ignores
    // SIGPIPE, and an ignored signal survives exec.
    let out = installer(&t.root, &["-c", "grep SigIgn /proc/self/status"]);
    let ignored = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(u64::MAX);
    assert_eq!(
        ignored & (1 << (libc::SIGPIPE - 1)),
        0,
        "SigIgn {ignored:#x}"
    );
}

#[test]
fn damaged_embedded_tarball_changes_nothing() {
    let t = imported("damaged");
    let payload = t.root.join("nixos-wsl-installer/rootfs.tar.gz");
    let good = fs::read(&payload).unwrap();

    // Same size, one byte flipped.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&payload, &bad).unwrap();
    let before = snapshot(&t.root);
    let out = installer(&t.root, &["-c", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("SHA-256") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(snapshot(&t.root), before);

    // Truncated download.
    fs::write(&payload, &good[..good.len() - 100]).unwrap();
    let before = snapshot(&t.root);
    let out = installer(&t.root, &["-c", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("bytes, the manifest says"),
        "{err}"
    );
    assert_eq!(snapshot(&t.root), before);

    // Restored, it installs.
    fs::write(&payload, &good).unwrap();
    let out = installer(&t.root, &["-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
}

#[test]
fn interrupted_install_is_completed_by_the_next_launch() {
    let t = imported("interrupt");
    let reference = reference(&t.rootfs, &t.tmp);
    let pristine = t.tmp.join("pristine");
    ok(run(Command::new("cp")
        .arg("-a")
        .arg(&t.root)
        .arg(&pristine)));
    let entries = entries(&t.rootfs).len() as u64;
    let mut killed = 0;
    // Kill after every step: each entry, then the seal and commit steps.
    for n in 1..=entries + 6 {
        let _ = fs::remove_dir_all(&t.root);
        ok(run(Command::new("cp")
            .arg("-a")
            .arg(&pristine)
            .arg(&t.root)));
        let out = run(Command::new(INSTALLER)
            .arg("--root")
            .arg(&t.root)
            .args(["-c", "exit 5"])
            .env("NIXOS_WSL_INSTALLER_TEST_STOP_AFTER", n.to_string()));
        if out.status.signal() == Some(9) {
            killed += 1;
        } else {
            assert_eq!(out.status.code(), Some(5), "n={n}: {}", text(&out.stderr));
        }
        let out = installer(&t.root, &["-c", "exit 6"]);
        assert_eq!(out.status.code(), Some(6), "n={n}: {}", text(&out.stderr));
        assert_eq!(snapshot(&t.root), reference, "n={n}");
        assert!(!t.root.join("nixos-wsl-installer").exists(), "n={n}");
    }
    assert!(
        killed as u64 >= entries,
        "only {killed} runs were interrupted"
    );
}

#[test]
fn concurrent_first_launches_install_once() {
    let t = imported("concurrent");
    let spawn = |code: &str| {
        Command::new(INSTALLER)
            .arg("--root")
            .arg(&t.root)
            .args(["-c", &format!("exit {code}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("11"), spawn("12"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(11), "{}", text(&a.stderr));
    assert_eq!(b.status.code(), Some(12), "{}", text(&b.stderr));
    assert_eq!(snapshot(&t.root), reference(&t.rootfs, &t.tmp));
}

#[test]
fn full_disk_fails_cleanly_and_a_retry_succeeds() {
    if !require_root("full_disk_fails_cleanly_and_a_retry_succeeds") {
        return;
    }
    let mut tmp = TempDir::new("fulldisk");
    let src = tmp.join("src");
    make_source(&src, "/bin/fakesh");
    // 3 MB of zeros: a tiny tarball that does not fit a 1 MB filesystem once unpacked.
    fs::write(src.join("usr/share/zeros"), vec![0u8; 3_000_000]).unwrap();
    let rootfs = tmp.join("rootfs.tar.gz");
    build(&src, &rootfs, &[]);
    let inst = tmp.join("installer.tar.gz");
    ok(wrap(&rootfs, &fake_installer(&tmp.path), &inst));
    let root = tmp.join("root");
    fs::create_dir(&root).unwrap();
    ok(run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs"])
        .arg(&root)));
    tmp.mounts.push(root.clone());
    import(&inst, &root);

    let out = installer(&root, &["-c", "exit 0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("start the distribution again"), "{err}");
    // Still the installer system: passwd and the payload untouched.
    assert!(text(&fs::read(root.join("etc/passwd")).unwrap()).contains("nixos-wsl-installer"));
    assert!(root.join("nixos-wsl-installer/rootfs.tar.gz").exists());
    assert!(root.join("nixos-wsl-installer/in-progress").exists());

    ok(run(Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&root)));
    let out = installer(&root, &["-c", "exit 9"]);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    assert_eq!(
        fs::metadata(root.join("usr/share/zeros")).unwrap().len(),
        3_000_000
    );
    assert!(!root.join("nixos-wsl-installer").exists());
    assert_eq!(snapshot(&root), reference(&rootfs, &tmp));
}

#[test]
fn admin_cli_version_help_and_usage_errors() {
    let out = ok(cli(&[os("--version")]));
    assert_eq!(
        text(&out.stdout),
        format!("nixos-wsl {} (unknown)\n", env!("CARGO_PKG_VERSION"))
    );
    let out = ok(cli(&[os("--help")]));
    assert!(text(&out.stdout).contains("tarball"));
    for bad in [
        &[][..],
        &[os("frobnicate")],
        &[os("tarball")],
        &[os("tarball"), os("build"), os("--source")],
    ] {
        let out = cli(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            text(&out.stderr).contains("usage:"),
            "{bad:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}
