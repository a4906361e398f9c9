//! Building the installer tarball around a root filesystem tarball. Its layout (all root:root,
//! one mtime, no hard links, ever: WSL's import refuses them):
//!
//! ```text
//! ./                                          0755
//! ./bin/                                      0755
//! ./bin/sh -> /nixos-wsl-installer/nixos-wsl-installer   (WSL's fallback shell)
//! ./etc/                                      0755
//! ./etc/group                                 0644  root:x:0:
//! ./etc/passwd                                0644  root:x:0:0:...:/root:/nixos-wsl-installer/nixos-wsl-installer
//! ./etc/shadow                                0600  root:!:1::::::
//! ./etc/wsl.conf                              0644  the root filesystem's, without [boot] systemd and [user] default
//! ./etc/wsl-distribution.conf                 0644  copied, if the root filesystem has one
//! ./nixos-wsl-installer/                      0755
//! ./nixos-wsl-installer/manifest              0644  size, SHA-256, unpacked size, entries
//! ./nixos-wsl-installer/nixos-wsl-installer   0755  the static installer binary
//! ./nixos-wsl-installer/rootfs.tar.gz         0644  the root filesystem tarball, verbatim
//! ./root/                                     0700
//! ```
//! (plus the icon, terminal profile and OOBE command the distribution config names, copied as
//! regular files with the modes Microsoft's validator wants).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::build::{gzip, write_atomically};
use super::index::Index;
use super::verify;
use crate::installer::handover::root_shell;
use crate::installer::layout::{self, Manifest};
use crate::installer::plan::Planner;
use crate::tar::header::{Entry, Kind};
use crate::tar::writer::Writer;
use crate::wslconf::{self, DISTRIBUTION_CONF_KEYS};

#[derive(Debug, Clone)]
pub(crate) struct ImageOptions {
    pub(crate) rootfs: PathBuf,
    pub(crate) installer: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) mtime: i64,
}

/// What goes into the installer tarball besides the two big files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(Vec<u8>),
    /// Copied from a host file (path), with this mode.
    HostFile(u32, PathBuf),
}

/// `/etc/wsl-distribution.conf` and the files it names: `(contents, [(path, mode, contents)])`.
pub(crate) type DistributionFiles = (Vec<u8>, Vec<(Vec<u8>, u32, Vec<u8>)>);

/// The files `/etc/wsl-distribution.conf` names, with the modes Microsoft's validator wants
/// for them (validate-modern.py).
const DISTRIBUTION_FILES: &[(&str, u32)] = &[
    ("shortcut.icon", 0o644),
    ("windowsterminal.profileTemplate", 0o640),
    ("oobe.command", 0o755),
];

/// The installer system's `/etc/wsl.conf`: the root filesystem's, without the two keys that
/// cannot apply before the real system is unpacked. `[boot] systemd`: the installer has no
/// `/sbin/init` (WSL then silently skips systemd for this first start, and Microsoft's
/// validator calls the tarball broken); the installer hands over to root's login shell,
/// which starts systemd itself. `[user] default`: the installer has only root, and
/// Microsoft's validator discourages the key (the `.wsl` form sets the default user with
/// `[oobe] defaultUid` instead). The real file is back from the next start on.
pub(crate) fn installer_wsl_conf(conf: &[u8]) -> Vec<u8> {
    let mut section = Vec::new();
    let mut out = Vec::with_capacity(conf.len());
    for line in conf.split_inclusive(|&b| b == b'\n') {
        let text = line.trim_ascii();
        if let Some(name) = text.strip_prefix(b"[").and_then(|t| t.strip_suffix(b"]")) {
            section = name.trim_ascii().to_ascii_lowercase();
        } else if let Some(eq) = text.iter().position(|&b| b == b'=') {
            let key = text[..eq].trim_ascii().to_ascii_lowercase();
            if (section == b"boot" && key == b"systemd")
                || (section == b"user" && key == b"default")
            {
                continue;
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// The passwd of the installer system: root, with the installer as its shell.
pub(crate) fn installer_passwd() -> Vec<u8> {
    format!(
        "root:x:0:0:NixOS installer:/root:{}\n",
        layout::binary_path()
    )
    .into_bytes()
}

/// The installer tarball's tree (pure: the layout in the module docs).
pub(crate) fn layout_items(
    wsl_conf: Vec<u8>,
    distribution: Option<DistributionFiles>,
    manifest: &Manifest,
    installer: &Path,
    rootfs: &Path,
) -> BTreeMap<Vec<u8>, Item> {
    let mut t = BTreeMap::new();
    let bin = layout::binary_path().into_bytes();
    t.insert(b"".to_vec(), Item::Dir(0o755));
    t.insert(b"bin".to_vec(), Item::Dir(0o755));
    t.insert(b"bin/sh".to_vec(), Item::Symlink(bin));
    t.insert(b"etc".to_vec(), Item::Dir(0o755));
    t.insert(
        b"etc/group".to_vec(),
        Item::File(0o644, b"root:x:0:\n".to_vec()),
    );
    t.insert(
        b"etc/passwd".to_vec(),
        Item::File(0o644, installer_passwd()),
    );
    // WSL and Microsoft's validator want one; root has no password (WSL never asks).
    t.insert(
        b"etc/shadow".to_vec(),
        Item::File(0o600, b"root:!:1::::::\n".to_vec()),
    );
    t.insert(
        b"etc/wsl.conf".to_vec(),
        Item::File(0o644, installer_wsl_conf(&wsl_conf)),
    );
    if let Some((conf, extra)) = distribution {
        t.insert(
            b"etc/wsl-distribution.conf".to_vec(),
            Item::File(0o644, conf),
        );
        for (path, mode, data) in extra {
            // Parent directories of the icon, profile or OOBE command.
            for (i, &b) in path.iter().enumerate() {
                if b == b'/' {
                    t.entry(path[..i].to_vec()).or_insert(Item::Dir(0o755));
                }
            }
            t.insert(path, Item::File(mode, data));
        }
    }
    let dir = layout::DIR.as_bytes().to_vec();
    let under = |name: &str| {
        let mut p = dir.clone();
        p.push(b'/');
        p.extend_from_slice(name.as_bytes());
        p
    };
    t.insert(dir.clone(), Item::Dir(0o755));
    t.insert(
        under(layout::MANIFEST),
        Item::File(0o644, manifest.render().into_bytes()),
    );
    t.insert(
        under(layout::BINARY),
        Item::HostFile(0o755, installer.to_path_buf()),
    );
    t.insert(
        under(layout::ROOTFS),
        Item::HostFile(0o644, rootfs.to_path_buf()),
    );
    t.insert(b"root".to_vec(), Item::Dir(0o700));
    t
}

/// Sorts like `--sort=name` on the real tree: by path components.
fn sorted(items: BTreeMap<Vec<u8>, Item>) -> Vec<(Vec<u8>, Item)> {
    let mut v: Vec<(Vec<u8>, Item)> = items.into_iter().collect();
    v.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
    v
}

pub(crate) fn sha256_file(path: &Path) -> Result<([u8; 32], u64)> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    layout::sha256(&mut f).with_context(|| format!("reading {}", path.display()))
}

/// Warns when the installer is not a static ELF executable: the installer system has no libc.
fn check_installer_binary(path: &Path) -> Result<()> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !data.starts_with(b"\x7fELF") {
        log::warn!(
            "{} is not an ELF executable; WSL will not be able to run it",
            path.display()
        );
        return Ok(());
    }
    if elf_has_interpreter(&data) {
        log::warn!(
            "{} is dynamically linked; the installer system has no libc. Build it with `cargo build --release --target x86_64-unknown-linux-musl`",
            path.display()
        );
    }
    Ok(())
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header.
pub fn elf_has_interpreter(data: &[u8]) -> bool {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return false; // not ELF64 LE: do not guess
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = usize::try_from(phoff)
            .unwrap_or(usize::MAX)
            .saturating_add(i * usize::from(phentsize));
        u32_at(at) == Some(3)
    })
}

/// `nixos-wsl tarball installer`.
pub(crate) fn build_installer(opts: &ImageOptions) -> Result<()> {
    check_installer_binary(&opts.installer)?;
    let (sha256, size) = sha256_file(&opts.rootfs)?;
    let (index, extra_paths) = scan_rootfs(opts)?;
    let manifest = Manifest {
        size,
        sha256,
        unpacked: index.unpacked,
        entries: index.count,
    };
    let wsl_conf = content(&index, b"etc/wsl.conf").ok_or_else(|| {
        anyhow!("the root filesystem has no /etc/wsl.conf; WSL reads it from the installer tarball at the first start, so the NixOS configuration must provide one")
    })?;
    check_handover(&index)?;
    let distribution = content(&index, b"etc/wsl-distribution.conf").map(|conf| {
        let extra = extra_paths
            .into_iter()
            .filter_map(|(p, mode)| content(&index, &p).map(|data| (p, mode, data)))
            .collect();
        (conf, extra)
    });
    let items = layout_items(
        wsl_conf,
        distribution,
        &manifest,
        &opts.installer,
        &opts.rootfs,
    );
    write_atomically(&opts.output, |w| {
        // Level 1: the payload is already compressed; a higher level only costs time.
        let gz = write_items(sorted(items), opts.mtime, gzip(w, 1))?;
        gz.finish().context("finishing the gzip stream")?;
        Ok(())
    })?;
    verify_or_remove(&opts.output)
}

/// A file `/etc/wsl-distribution.conf` names: its path in the root filesystem and its mode.
type ExtraFile = (Vec<u8>, u32);

/// One pass over the root filesystem: what the installer tarball copies, and every entry
/// through the installer's own planner, so an archive it would refuse fails here, not on a
/// user's machine. A second pass, only when a copied file is a symlink, fetches its target.
/// Also returns the files `/etc/wsl-distribution.conf` names (icon, terminal profile), with
/// the modes they get.
fn scan_rootfs(opts: &ImageOptions) -> Result<(Index, Vec<ExtraFile>)> {
    let mut planner = Planner::new();
    let wanted = |p: &[u8]| verify::WANTED.contains(&p);
    let scan = |want: &dyn Fn(&[u8]) -> bool, planner: Option<&mut Planner>| -> Result<Index> {
        let mut planner = planner;
        Index::scan(&opts.rootfs, want, &mut |e| {
            if let Some(p) = planner.as_deref_mut() {
                p.plan(e)
                    .map_err(|r| anyhow!("{r}; the installer would refuse this root filesystem"))?;
            }
            Ok(())
        })
    };
    let index = scan(&wanted, Some(&mut planner))?;
    // Files that are symlinks in the root filesystem: fetch their targets' contents.
    let mut want_more: Vec<Vec<u8>> = Vec::new();
    let mut extra_paths: Vec<ExtraFile> = Vec::new();
    for w in verify::WANTED {
        if let Ok((t, _)) = index.resolve(w) {
            if !index.contents.contains_key(&t) {
                want_more.push(t);
            }
        }
    }
    if let Some(conf) = content(&index, b"etc/wsl-distribution.conf") {
        let parsed = wslconf::parse(&conf, DISTRIBUTION_CONF_KEYS);
        for (key, mode) in DISTRIBUTION_FILES {
            if let Some(p) = parsed.get(key) {
                if let Ok((t, _)) = index.resolve(p.as_bytes()) {
                    extra_paths.push((p.trim_start_matches('/').as_bytes().to_vec(), *mode));
                    want_more.push(t);
                }
            }
        }
    }
    if want_more.is_empty() {
        return Ok((index, extra_paths));
    }
    let index = scan(&|p| wanted(p) || want_more.iter().any(|w| w == p), None)?;
    Ok((index, extra_paths))
}

/// The installer hands over to root's shell of the unpacked `/etc/passwd`: it must have one.
fn check_handover(index: &Index) -> Result<()> {
    let passwd = content(index, b"etc/passwd").ok_or_else(|| {
        anyhow!("the root filesystem has no /etc/passwd; the installer could not hand over to it")
    })?;
    let shell = root_shell(&passwd)
        .ok_or_else(|| anyhow!("the root filesystem's /etc/passwd has no uid 0 entry"))?;
    if let Err(why) = index.resolve(&shell) {
        log::warn!(
            "root's shell {} is not in the root filesystem ({why}); the installer's handover will fail unless it exists at first boot",
            String::from_utf8_lossy(&shell)
        );
    }
    Ok(())
}

/// Verifies the written tarball as `wsl --import` would read it; removes it on an error.
fn verify_or_remove(output: &Path) -> Result<()> {
    let findings = verify::verify_file(output)?;
    if verify::has_errors(&findings) {
        let errors: Vec<String> = findings
            .iter()
            .filter(|f| f.severity == verify::Severity::Error)
            .map(|f| f.to_string())
            .collect();
        let _ = fs::remove_file(output);
        bail!(
            "the installer tarball fails verification:\n{}",
            errors.join("\n")
        );
    }
    Ok(())
}

/// Contents of a (possibly symlinked) regular file of the index.
fn content(index: &Index, path: &[u8]) -> Option<Vec<u8>> {
    let (t, e) = index.resolve(path).ok()?;
    (e.kind == Kind::Regular)
        .then(|| index.contents.get(&t).cloned())
        .flatten()
}

fn write_items<W: Write>(items: Vec<(Vec<u8>, Item)>, mtime: i64, out: W) -> Result<W> {
    let mut w = Writer::new(out);
    for (path, item) in items {
        let mut rel = b"./".to_vec();
        rel.extend_from_slice(&path);
        let mk = |kind: Kind, mode: u32, p: Vec<u8>| {
            let mut e = Entry::new(kind, p);
            e.mode = mode;
            e.mtime = mtime;
            e
        };
        match item {
            Item::Dir(mode) => {
                if !path.is_empty() {
                    rel.push(b'/');
                }
                w.append_meta(&mk(Kind::Directory, mode, rel))?;
            }
            Item::File(mode, data) => {
                let mut e = mk(Kind::Regular, mode, rel);
                e.size = data.len() as u64;
                w.append(&e, &mut &data[..])?;
            }
            Item::Symlink(target) => {
                let mut e = mk(Kind::Symlink, 0o777, rel);
                e.link = target;
                w.append_meta(&e)?;
            }
            Item::HostFile(mode, host) => {
                let mut f =
                    File::open(&host).with_context(|| format!("opening {}", host.display()))?;
                let mut e = mk(Kind::Regular, mode, rel);
                e.size = f
                    .metadata()
                    .with_context(|| format!("examining {}", host.display()))?
                    .len();
                w.append(&e, &mut f)
                    .with_context(|| format!("packing {}", host.display()))?;
            }
        }
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_everything_and_sorts_like_a_tree() {
        let m = Manifest {
            size: 1,
            sha256: [0; 32],
            unpacked: 2,
            entries: 3,
        };
        let items = layout_items(
            b"[boot]\n".to_vec(),
            None,
            &m,
            Path::new("/x/inst"),
            Path::new("/x/r.tgz"),
        );
        let order: Vec<String> = sorted(items)
            .into_iter()
            .map(|(p, _)| String::from_utf8(p).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "",
                "bin",
                "bin/sh",
                "etc",
                "etc/group",
                "etc/passwd",
                "etc/shadow",
                "etc/wsl.conf",
                "nixos-wsl-installer",
                "nixos-wsl-installer/manifest",
                "nixos-wsl-installer/nixos-wsl-installer",
                "nixos-wsl-installer/rootfs.tar.gz",
                "root"
            ]
        );
        assert_eq!(
            root_shell(&installer_passwd()).unwrap(),
            b"/nixos-wsl-installer/nixos-wsl-installer"
        );
    }

    #[test]
    fn installer_wsl_conf_drops_what_cannot_apply_yet() {
        let conf = b"# generated\n[boot]\nsystemd=true\ncommand = echo hi\n\n[User]\n Default = nixos\n[automount]\nroot=/mnt/\ndefault=x\n";
        assert_eq!(
            String::from_utf8(installer_wsl_conf(conf)).unwrap(),
            "# generated\n[boot]\ncommand = echo hi\n\n[User]\n[automount]\nroot=/mnt/\ndefault=x\n"
        );
    }

    #[test]
    fn detects_dynamic_elf() {
        let mut elf = vec![0u8; 0x100];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes());
        assert!(!elf_has_interpreter(&elf));
        elf[0x40 + 56..0x40 + 60].copy_from_slice(&3u32.to_le_bytes());
        assert!(elf_has_interpreter(&elf));
    }
}
