//! Building a root filesystem tarball from a directory plus Nix store paths, reproducibly:
//! entries sorted by name within each directory (GNU tar's `--sort=name` order), one fixed
//! mtime, numeric owners (root unless asked to keep them), no user or group names, a gzip
//! header without a timestamp. The same inputs give byte-identical output.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use flate2::{Compression, GzBuilder};

use crate::tar::header::{Entry, Kind};
use crate::tar::writer::Writer;

/// Options of `nixos-wsl tarball build`.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub store_paths: Vec<PathBuf>,
    pub output: PathBuf,
    pub mtime: i64,
    pub keep_owners: bool,
    /// gzip level 0-9.
    pub level: u32,
    /// Owners of single entries (archive path without `./`, e.g. `home/nixos/.gitconfig`),
    /// whatever the source says: the Nix build that lays out the source cannot chown.
    pub owners: HashMap<Vec<u8>, (u64, u64)>,
    /// Where the store paths are on this machine, if not at their own path: the root of a
    /// chroot store (`nix-store --store local?root=DIR`), whose `/nix/store/x` is
    /// `DIR/nix/store/x`.
    pub store_root: Option<PathBuf>,
}

impl BuildOptions {
    /// Where store path `p` is on this machine.
    fn host_path(&self, p: &Path) -> PathBuf {
        match &self.store_root {
            Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    }
}

/// Parses a store path list (Nix `closureInfo`'s `store-paths`): one absolute path per line
/// directly under `/nix/store`; blank lines are ignored, duplicates dropped, order irrelevant.
pub(crate) fn parse_store_paths(text: &[u8]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let name = line
            .strip_prefix(b"/nix/store/")
            .filter(|rest| {
                !rest.is_empty() && !rest.contains(&b'/') && *rest != b"." && *rest != b".."
            })
            .ok_or_else(|| {
                anyhow!(
                    "line {}: {:?} is not a store path (/nix/store/<name>)",
                    n + 1,
                    String::from_utf8_lossy(line)
                )
            })?;
        let _ = name;
        out.push(PathBuf::from(OsString::from_vec(line.to_vec())));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What goes at a path of the archive's tree.
#[derive(Debug)]
enum Node {
    /// A file, directory or symlink of the host, packed recursively.
    Host(PathBuf),
    /// A directory that holds store paths; merged with the source directory's if that has one.
    Overlay(BTreeMap<Vec<u8>, Node>),
}

fn overlay_for(opts: &BuildOptions) -> BTreeMap<Vec<u8>, Node> {
    let mut store = BTreeMap::new();
    for p in &opts.store_paths {
        if let Some(name) = p.file_name() {
            store.insert(name.as_bytes().to_vec(), Node::Host(opts.host_path(p)));
        }
    }
    let mut nix = BTreeMap::new();
    nix.insert(b"store".to_vec(), Node::Overlay(store));
    let mut root = BTreeMap::new();
    if !opts.store_paths.is_empty() {
        root.insert(b"nix".to_vec(), Node::Overlay(nix));
    }
    root
}

struct Packer<'a, W: Write> {
    writer: Writer<W>,
    mtime: i64,
    keep_owners: bool,
    owners: &'a HashMap<Vec<u8>, (u64, u64)>,
    /// (dev, ino) of multiply-linked files already packed, and their archive path.
    links: HashMap<(u64, u64), Vec<u8>>,
}

fn archive_path(rel: &[u8], dir: bool) -> Vec<u8> {
    let mut p = b"./".to_vec();
    p.extend_from_slice(rel);
    if dir && !rel.is_empty() {
        p.push(b'/');
    }
    p
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = rel.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl<W: Write> Packer<'_, W> {
    fn owners(&self, rel: &[u8], md: &fs::Metadata) -> (u64, u64) {
        if let Some(owners) = self.owners.get(rel) {
            *owners
        } else if self.keep_owners {
            (u64::from(md.uid()), u64::from(md.gid()))
        } else {
            (0, 0)
        }
    }

    fn synthetic_dir(&mut self, rel: &[u8]) -> Result<()> {
        let mut e = Entry::new(Kind::Directory, archive_path(rel, true));
        e.mode = 0o755;
        e.mtime = self.mtime;
        self.writer.append_meta(&e)?;
        Ok(())
    }

    /// Packs host path `host` at archive path `rel`, merging `overlay` into it if a directory.
    fn pack(
        &mut self,
        host: &Path,
        rel: &[u8],
        overlay: Option<&BTreeMap<Vec<u8>, Node>>,
    ) -> Result<()> {
        let md =
            fs::symlink_metadata(host).with_context(|| format!("examining {}", host.display()))?;
        let ft = md.file_type();
        let (uid, gid) = self.owners(rel, &md);
        let mode = md.mode() & 0o7777;
        let mk = |kind, dir| {
            let mut e = Entry::new(kind, archive_path(rel, dir));
            e.mode = mode;
            e.uid = uid;
            e.gid = gid;
            e.mtime = self.mtime;
            e
        };
        if ft.is_dir() {
            self.writer.append_meta(&mk(Kind::Directory, true))?;
            let mut children: BTreeMap<Vec<u8>, Child> = BTreeMap::new();
            for item in fs::read_dir(host).with_context(|| format!("listing {}", host.display()))? {
                let item = item.with_context(|| format!("listing {}", host.display()))?;
                children.insert(
                    item.file_name().as_bytes().to_vec(),
                    Child::Host(item.path(), None),
                );
            }
            if let Some(overlay) = overlay {
                merge(&mut children, overlay, host)?;
            }
            return self.children(rel, children);
        }
        if overlay.is_some() {
            bail!(
                "{} is not a directory, but store paths go below it",
                host.display()
            );
        }
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                let mut e = mk(Kind::HardLink, false);
                e.link = first.clone();
                self.writer.append_meta(&e)?;
                return Ok(());
            }
            self.links
                .insert((md.dev(), md.ino()), archive_path(rel, false));
        }
        self.pack_leaf(host, &md, mk(Kind::Regular, false))
    }

    /// Packs a file, symlink, device or FIFO; `e` has its path, owner, mode and mtime.
    fn pack_leaf(&mut self, host: &Path, md: &fs::Metadata, mut e: Entry) -> Result<()> {
        let ft = md.file_type();
        if ft.is_file() {
            e.size = md.len();
            let mut f = File::open(host).with_context(|| format!("opening {}", host.display()))?;
            self.writer
                .append(&e, &mut f)
                .with_context(|| format!("packing {}", host.display()))?;
        } else if ft.is_symlink() {
            e.kind = Kind::Symlink;
            e.link = fs::read_link(host)
                .with_context(|| format!("reading symlink {}", host.display()))?
                .into_os_string()
                .into_vec();
            self.writer.append_meta(&e)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            e.kind = if ft.is_char_device() {
                Kind::CharDevice
            } else {
                Kind::BlockDevice
            };
            let rdev = md.rdev();
            e.dev_major = libc::major(rdev);
            e.dev_minor = libc::minor(rdev);
            self.writer.append_meta(&e)?;
        } else if ft.is_fifo() {
            e.kind = Kind::Fifo;
            self.writer.append_meta(&e)?;
        } else {
            bail!(
                "{} is a socket; sockets cannot be packed (remove it from the source)",
                host.display()
            );
        }
        Ok(())
    }

    fn children(&mut self, rel: &[u8], children: BTreeMap<Vec<u8>, Child>) -> Result<()> {
        for (name, child) in children {
            let child_rel = join(rel, &name);
            match child {
                Child::Host(path, overlay) => self.pack(&path, &child_rel, overlay.as_ref())?,
                Child::Synthetic(overlay) => {
                    self.synthetic_dir(&child_rel)?;
                    let mut kids = BTreeMap::new();
                    merge(&mut kids, &overlay, Path::new("/"))?;
                    self.children(&child_rel, kids)?;
                }
            }
        }
        Ok(())
    }
}

/// A child of a directory being packed.
enum Child {
    /// From the host, with store paths to merge below it.
    Host(PathBuf, Option<BTreeMap<Vec<u8>, Node>>),
    /// A directory only the store paths need (`/nix`, `/nix/store`).
    Synthetic(BTreeMap<Vec<u8>, Node>),
}

fn merge(
    children: &mut BTreeMap<Vec<u8>, Child>,
    overlay: &BTreeMap<Vec<u8>, Node>,
    parent: &Path,
) -> Result<()> {
    for (name, node) in overlay {
        match node {
            Node::Host(store_path) => {
                // Already in the source directory: content-addressed, so the same thing.
                children
                    .entry(name.clone())
                    .or_insert_with(|| Child::Host(store_path.clone(), None));
            }
            Node::Overlay(sub) => {
                let sub = clone_overlay(sub);
                match children.remove(name) {
                    None => {
                        children.insert(name.clone(), Child::Synthetic(sub));
                    }
                    Some(Child::Host(p, None)) => {
                        children.insert(name.clone(), Child::Host(p, Some(sub)));
                    }
                    Some(_) => bail!("conflicting store path layout under {}", parent.display()),
                }
            }
        }
    }
    Ok(())
}

fn clone_overlay(o: &BTreeMap<Vec<u8>, Node>) -> BTreeMap<Vec<u8>, Node> {
    o.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    Node::Host(p) => Node::Host(p.clone()),
                    Node::Overlay(s) => Node::Overlay(clone_overlay(s)),
                },
            )
        })
        .collect()
}

/// Writes the archive of `opts` to `out` (uncompressed tar).
pub(crate) fn write_tar<W: Write>(opts: &BuildOptions, out: W) -> Result<W> {
    let overlay = overlay_for(opts);
    for p in &opts.store_paths {
        let host = opts.host_path(p);
        fs::symlink_metadata(&host).with_context(|| {
            format!(
                "store path {} is not on this machine ({})",
                p.display(),
                host.display()
            )
        })?;
    }
    let mut packer = Packer {
        writer: Writer::new(out),
        mtime: opts.mtime,
        keep_owners: opts.keep_owners,
        owners: &opts.owners,
        links: HashMap::new(),
    };
    let md = fs::metadata(&opts.source)
        .with_context(|| format!("examining {}", opts.source.display()))?;
    if !md.is_dir() {
        bail!("{} is not a directory", opts.source.display());
    }
    packer.pack(&opts.source, b"", Some(&overlay))?;
    Ok(packer.writer.finish()?)
}

/// Writes `output` through a temporary sibling, so a failed build leaves no partial file.
pub(crate) fn write_atomically(
    output: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let mut tmp = output.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        body(&mut w)?;
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, output)
            .with_context(|| format!("renaming {} to {}", tmp.display(), output.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A gzip stream without a timestamp or file name: deterministic.
pub fn gzip<W: Write>(out: W, level: u32) -> flate2::write::GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(out, Compression::new(level))
}

/// `nixos-wsl tarball build`.
pub fn build(opts: &BuildOptions) -> Result<()> {
    write_atomically(&opts.output, |w| {
        let gz = write_tar(opts, gzip(w, opts.level))?;
        gz.finish().context("finishing the gzip stream")?;
        Ok(())
    })
}

/// The default mtime: `$SOURCE_DATE_EPOCH` if set and numeric, else 1 (what Nix uses).
pub(crate) fn default_mtime(source_date_epoch: Option<&str>) -> Result<i64> {
    match source_date_epoch {
        None | Some("") => Ok(1),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_path_lists() {
        let p =
            parse_store_paths(b"/nix/store/bbb-b\n\n/nix/store/aaa-a\n/nix/store/aaa-a\n").unwrap();
        assert_eq!(
            p,
            vec![
                PathBuf::from("/nix/store/aaa-a"),
                PathBuf::from("/nix/store/bbb-b")
            ]
        );
        assert!(parse_store_paths(b"/etc/passwd\n").is_err());
        assert!(parse_store_paths(b"/nix/store/a/b\n").is_err());
        assert!(parse_store_paths(b"/nix/store/..\n").is_err());
        assert!(parse_store_paths(b"nix/store/a\n").is_err());
    }

    #[test]
    fn mtime_default() {
        assert_eq!(default_mtime(None).unwrap(), 1);
        assert_eq!(default_mtime(Some("1700000000")).unwrap(), 1_700_000_000);
        assert!(default_mtime(Some("yesterday")).is_err());
    }
}
