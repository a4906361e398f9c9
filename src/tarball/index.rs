//! An in-memory index of a tarball's entries (metadata, the first bytes of executables, the
//! contents of a few wanted files, which PAX xattr records occur), with path resolution that
//! follows the archive's own symlinks the way the kernel would once the tarball is unpacked as
//! `/`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};

use super::decompress;
use super::header::{Entry, Kind};
use super::reader::Reader;
use crate::installer::plan::sanitize;

/// Bytes kept from the start of every executable file (ELF magic, `#!` lines).
const HEAD: usize = 256;
/// Largest wanted file whose contents are kept.
const MAX_WANTED: u64 = 1 << 20;
/// Symlinks followed before giving up, like the kernel's limit.
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Symlink target, or the normalised path a hard link points to.
    pub link: Vec<u8>,
    /// The first bytes of an executable or wanted regular file.
    pub head: Vec<u8>,
    /// Not in the archive; implied by a descendant.
    pub implicit: bool,
    /// The archive spells the path without a leading `./` or `/` (`dev/null`, not
    /// `./dev/null`); Microsoft's validator tells the two apart when it looks for masked units.
    pub bare: bool,
}

/// Where one extended attribute (a `SCHILY.xattr.NAME` PAX record) occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrUse {
    /// Entries carrying it.
    pub entries: u64,
    /// Position in the archive (0-based) and path of the first one.
    pub first: u64,
    pub sample: String,
}

#[derive(Debug, Default)]
pub struct Index {
    /// Keyed by normalised path (`etc/passwd`; the root is the empty path).
    pub entries: HashMap<Vec<u8>, IndexEntry>,
    /// Entries in the archive, including repeated paths.
    pub count: u64,
    /// Size of the uncompressed tar stream.
    pub unpacked: u64,
    /// `(path, target)` of every hard link.
    pub hard_links: Vec<(String, String)>,
    /// Paths that cannot be extracted safely (`..`), with the reason.
    pub bad_paths: Vec<(String, String)>,
    /// Contents of the wanted files.
    pub contents: HashMap<Vec<u8>, Vec<u8>>,
    /// Extended attributes recorded as `SCHILY.xattr.NAME` PAX records, by NAME (WSL1 cannot
    /// store `security.*` ones; Microsoft's validator warns about them).
    pub xattrs: BTreeMap<Vec<u8>, XattrUse>,
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Display form of a normalised path.
pub fn display(p: &[u8]) -> String {
    format!("/{}", lossy(p))
}

impl Index {
    /// Reads the tarball at `path`, keeping the contents of files for which `want` is true and
    /// calling `each` for every entry as read (for planners and other validators).
    pub fn scan(
        path: &Path,
        want: &dyn Fn(&[u8]) -> bool,
        each: &mut dyn FnMut(&Entry) -> Result<()>,
    ) -> Result<Index> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let stream =
            decompress::open(file).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = Reader::new(stream);
        let mut index = Index::default();
        while let Some(entry) = reader
            .next_entry()
            .with_context(|| format!("reading {}", path.display()))?
        {
            each(&entry)?;
            let position = index.count;
            index.count += 1;
            for key in reader.pax_keys() {
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    let seen = index
                        .xattrs
                        .entry(name.to_vec())
                        .or_insert_with(|| XattrUse {
                            entries: 0,
                            first: position,
                            sample: lossy(&entry.path),
                        });
                    seen.entries += 1;
                }
            }
            let norm = match sanitize(&entry.path) {
                Ok(p) => p.as_bytes().to_vec(),
                Err(why) => {
                    index.bad_paths.push((lossy(&entry.path), why));
                    continue;
                }
            };
            let mut link = entry.link.clone();
            if entry.kind == Kind::HardLink {
                index.hard_links.push((display(&norm), lossy(&entry.link)));
                match sanitize(&entry.link) {
                    Ok(p) => link = p.as_bytes().to_vec(),
                    Err(why) => index
                        .bad_paths
                        .push((lossy(&entry.link), format!("hard link target: {why}"))),
                }
            }
            let mut head = Vec::new();
            if entry.kind == Kind::Regular {
                if want(&norm) && entry.size <= MAX_WANTED {
                    let data = reader.read_data(MAX_WANTED)?;
                    head = data[..data.len().min(HEAD)].to_vec();
                    index.contents.insert(norm.clone(), data);
                } else if entry.mode & 0o111 != 0 || want(&norm) {
                    // A wanted file too large to keep still shows what it is (ELF or not).
                    head = reader.read_head(HEAD)?;
                }
            }
            // Parents the archive does not list still exist once it is unpacked.
            for (i, &b) in norm.iter().enumerate() {
                if b == b'/' {
                    index
                        .entries
                        .entry(norm[..i].to_vec())
                        .or_insert_with(implicit_dir);
                }
            }
            if !norm.is_empty() {
                index.entries.entry(Vec::new()).or_insert_with(implicit_dir);
            }
            index.entries.insert(
                norm,
                IndexEntry {
                    kind: entry.kind,
                    mode: entry.mode,
                    uid: entry.uid,
                    gid: entry.gid,
                    size: entry.size,
                    link,
                    head,
                    implicit: false,
                    bare: !entry.path.starts_with(b"./") && !entry.path.starts_with(b"/"),
                },
            );
        }
        index.unpacked = reader.offset();
        Ok(index)
    }

    /// Resolves `path` (absolute, as seen inside the unpacked tree) through the archive's
    /// symlinks and hard links; returns the final normalised path and its entry.
    pub fn resolve(&self, path: &[u8]) -> Result<(Vec<u8>, &IndexEntry), String> {
        let mut pending: Vec<Vec<u8>> = components(path).into_iter().rev().collect();
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        loop {
            let Some(comp) = pending.pop() else {
                let p = cur.join(&b'/');
                let e = self
                    .entries
                    .get(&p)
                    .ok_or_else(|| format!("{} does not exist", display(&p)))?;
                return Ok((p, e));
            };
            if comp == b".." {
                cur.pop();
                continue;
            }
            cur.push(comp);
            let p = cur.join(&b'/');
            let Some(e) = self.entries.get(&p) else {
                return Err(format!("{} does not exist in the tarball", display(&p)));
            };
            match e.kind {
                Kind::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(format!("too many levels of symlinks at {}", display(&p)));
                    }
                    cur.pop();
                    if e.link.starts_with(b"/") {
                        cur.clear();
                    }
                    for c in components(&e.link).into_iter().rev() {
                        pending.push(c);
                    }
                }
                Kind::HardLink => {
                    if !pending.is_empty() {
                        return Err(format!("{} is not a directory", display(&p)));
                    }
                    let target = e.link.clone();
                    let t = self.entries.get(&target).ok_or_else(|| {
                        format!(
                            "hard link {} points to missing {}",
                            display(&p),
                            display(&target)
                        )
                    })?;
                    return Ok((target, t));
                }
                Kind::Directory => {}
                _ if !pending.is_empty() => {
                    return Err(format!("{} is not a directory", display(&p)))
                }
                _ => {}
            }
        }
    }
}

fn implicit_dir() -> IndexEntry {
    IndexEntry {
        kind: Kind::Directory,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        link: Vec::new(),
        head: Vec::new(),
        implicit: true,
        bare: false,
    }
}

/// Components of a path, without empty ones and `.` (`..` is kept for resolution).
fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, link: &str) -> IndexEntry {
        IndexEntry {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            link: link.as_bytes().to_vec(),
            head: Vec::new(),
            implicit: false,
            bare: false,
        }
    }

    fn index(items: &[(&str, Kind, &str)]) -> Index {
        let mut i = Index::default();
        i.entries.insert(Vec::new(), entry(Kind::Directory, ""));
        for (p, k, l) in items {
            i.entries.insert(p.as_bytes().to_vec(), entry(*k, l));
        }
        i
    }

    #[test]
    fn resolves_through_symlinks_like_the_kernel() {
        let i = index(&[
            ("bin", Kind::Symlink, "usr/bin"),
            ("usr", Kind::Directory, ""),
            ("usr/bin", Kind::Directory, ""),
            ("usr/bin/sh", Kind::Symlink, "dash"),
            ("usr/bin/dash", Kind::Regular, ""),
            ("abs", Kind::Symlink, "/usr/bin/../bin/sh"),
            ("loop", Kind::Symlink, "loop"),
            ("file", Kind::Regular, ""),
            ("hl", Kind::HardLink, "usr/bin/dash"),
            ("up", Kind::Symlink, "../../../usr/bin/dash"),
        ]);
        assert_eq!(i.resolve(b"/bin/sh").unwrap().0, b"usr/bin/dash");
        assert_eq!(i.resolve(b"/abs").unwrap().0, b"usr/bin/dash");
        assert_eq!(i.resolve(b"/hl").unwrap().0, b"usr/bin/dash");
        assert_eq!(
            i.resolve(b"/up").unwrap().0,
            b"usr/bin/dash",
            ".. stops at the root"
        );
        assert!(i.resolve(b"/loop").unwrap_err().contains("too many"));
        assert!(i
            .resolve(b"/file/x")
            .unwrap_err()
            .contains("not a directory"));
        assert!(i.resolve(b"/nope").unwrap_err().contains("does not exist"));
    }
}
