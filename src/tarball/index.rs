//! An in-memory index of a tarball's entries (metadata, the first bytes of executables, the
//! contents of a few wanted files, which PAX xattr records occur), with path resolution that
//! follows the archive's own symlinks the way the kernel would once the tarball is unpacked as
//! `/`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};

use crate::installer::plan::sanitize;
use crate::tar::decompress;
use crate::tar::header::{Entry, Kind};
use crate::tar::reader::Reader;

/// Bytes kept from the start of every executable file (ELF magic, `#!` lines).
const HEAD: usize = 256;
/// Largest wanted file whose contents are kept.
const MAX_WANTED: u64 = 1 << 20;
/// Symlinks followed before giving up, like the kernel's limit.
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub kind: Kind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    /// Symlink target, or the normalised path a hard link points to.
    pub(crate) link: Vec<u8>,
    /// The first bytes of an executable or wanted regular file.
    pub(crate) head: Vec<u8>,
    /// Not in the archive; implied by a descendant.
    pub(crate) implicit: bool,
    /// The archive spells the path without a leading `./` or `/` (`dev/null`, not
    /// `./dev/null`); Microsoft's validator tells the two apart when it looks for masked units.
    pub(crate) bare: bool,
}

/// Where one extended attribute (a `SCHILY.xattr.NAME` PAX record) occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XattrUse {
    /// Entries carrying it.
    pub(crate) entries: u64,
    /// Position in the archive (0-based) and path of the first one.
    pub(crate) first: u64,
    pub(crate) sample: String,
}

/// One path of the tree: a component name under its parent node.
#[derive(Debug)]
struct Node {
    parent: u32,
    name: Box<[u8]>,
    /// Children, as a linked list (first child, next sibling), for walking subtrees.
    first_child: u32,
    next_sibling: u32,
    /// `None` only for the root before any entry implied it.
    entry: Option<IndexEntry>,
}

/// No node (the end of a sibling list; node 0 is the root, never anyone's child).
const NONE: u32 = 0;

/// The archive's paths as a tree of components, so memory grows with the number of paths
/// (and directories they imply), never with the square of a path's length as it would if
/// every implied directory were keyed by its full path.
#[derive(Debug)]
pub struct Index {
    nodes: Vec<Node>,
    children: HashMap<(u32, Box<[u8]>), u32>,
    /// Entries in the archive, including repeated paths.
    pub(crate) count: u64,
    /// Size of the uncompressed tar stream.
    pub(crate) unpacked: u64,
    /// `(path, target)` of every hard link.
    pub(crate) hard_links: Vec<(String, String)>,
    /// Paths that cannot be extracted safely (`..`), with the reason.
    pub(crate) bad_paths: Vec<(String, String)>,
    /// Contents of the wanted files.
    pub contents: HashMap<Vec<u8>, Vec<u8>>,
    /// Extended attributes recorded as `SCHILY.xattr.NAME` PAX records, by NAME (WSL1 cannot
    /// store `security.*` ones; Microsoft's validator warns about them).
    pub(crate) xattrs: BTreeMap<Vec<u8>, XattrUse>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            nodes: vec![Node {
                parent: NONE,
                name: Box::default(),
                first_child: NONE,
                next_sibling: NONE,
                entry: None,
            }],
            children: HashMap::new(),
            count: 0,
            unpacked: 0,
            hard_links: Vec::new(),
            bad_paths: Vec::new(),
            contents: HashMap::new(),
            xattrs: BTreeMap::new(),
        }
    }
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Display form of a normalised path.
pub(crate) fn display(p: &[u8]) -> String {
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
            let e = IndexEntry {
                kind: entry.kind,
                mode: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
                size: entry.size,
                link,
                head,
                implicit: false,
                bare: !entry.path.starts_with(b"./") && !entry.path.starts_with(b"/"),
            };
            let created = index.insert(&norm, e);
            // Directories the path implies count against the entry limit: they cost a node.
            reader
                .count_entries(created.saturating_sub(1), &entry.path)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        index.unpacked = reader.offset();
        Ok(index)
    }

    /// The node of `name` under `parent`, created (as an implied directory) if missing.
    fn child_or_create(&mut self, parent: u32, name: &[u8], created: &mut u64) -> u32 {
        if let Some(&id) = self.children.get(&(parent, Box::from(name))) {
            return id;
        }
        let id = self.nodes.len() as u32;
        let sibling = self.nodes[parent as usize].first_child;
        self.nodes.push(Node {
            parent,
            name: Box::from(name),
            first_child: NONE,
            next_sibling: sibling,
            entry: Some(implicit_dir()),
        });
        self.nodes[parent as usize].first_child = id;
        self.children.insert((parent, Box::from(name)), id);
        *created += 1;
        id
    }

    /// Records `entry` at the normalised path `norm` (the root is the empty path), creating
    /// the directories it implies; returns how many nodes were created.
    pub(crate) fn insert(&mut self, norm: &[u8], entry: IndexEntry) -> u64 {
        let mut created = 0;
        if self.nodes[0].entry.is_none() {
            self.nodes[0].entry = Some(implicit_dir());
        }
        let mut id = 0;
        for comp in norm.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            id = self.child_or_create(id, comp, &mut created);
        }
        self.nodes[id as usize].entry = Some(entry);
        created
    }

    fn lookup(&self, parent: u32, name: &[u8]) -> Option<u32> {
        self.children.get(&(parent, Box::from(name))).copied()
    }

    fn node_of(&self, norm: &[u8]) -> Option<u32> {
        let mut id = 0;
        for comp in norm.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            id = self.lookup(id, comp)?;
        }
        Some(id)
    }

    /// The entry at normalised path `norm` (`etc/passwd`; the root is the empty path),
    /// implied directories included.
    pub(crate) fn get(&self, norm: &[u8]) -> Option<&IndexEntry> {
        self.nodes[self.node_of(norm)? as usize].entry.as_ref()
    }

    /// The normalised path of a node.
    fn path_of(&self, mut id: u32) -> Vec<u8> {
        let mut names: Vec<&[u8]> = Vec::new();
        while id != 0 {
            let n = &self.nodes[id as usize];
            names.push(&n.name);
            id = n.parent;
        }
        names.reverse();
        names.join(&b'/')
    }

    /// Calls `f` with the path relative to `dir` and the entry of every node below the
    /// normalised directory `dir` (not `dir` itself), depth first. Iterative, with one shared
    /// path buffer: no recursion and no allocation per node, however deep the tree.
    pub(crate) fn visit_below(&self, dir: &[u8], f: &mut dyn FnMut(&[u8], &IndexEntry)) {
        let Some(top) = self.node_of(dir) else {
            return;
        };
        let mut path: Vec<u8> = Vec::new();
        // (node, length of `path` before its name was appended)
        let mut stack: Vec<(u32, usize)> = Vec::new();
        let mut next = self.nodes[top as usize].first_child;
        loop {
            if next != NONE {
                let n = &self.nodes[next as usize];
                let before = path.len();
                if before > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(&n.name);
                if let Some(e) = &n.entry {
                    f(&path, e);
                }
                stack.push((next, before));
                next = n.first_child;
                continue;
            }
            let Some((done, before)) = stack.pop() else {
                return;
            };
            path.truncate(before);
            next = self.nodes[done as usize].next_sibling;
        }
    }

    /// Calls `f` for every entry with its normalised path (the root included, as the empty
    /// path, if present).
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&[u8], &IndexEntry)) {
        if let Some(e) = &self.nodes[0].entry {
            f(b"", e);
        }
        self.visit_below(b"", f);
    }

    /// Resolves `path` (absolute, as seen inside the unpacked tree) through the archive's
    /// symlinks and hard links; returns the final normalised path and its entry. Work is
    /// linear in the path and the links followed (at most [`MAX_HOPS`]).
    pub fn resolve(&self, path: &[u8]) -> Result<(Vec<u8>, &IndexEntry), String> {
        let mut pending: Vec<Vec<u8>> = components(path).into_iter().rev().collect();
        // The node ids of the current path; empty is the root.
        let mut cur: Vec<u32> = Vec::new();
        let mut hops = 0;
        loop {
            let here = cur.last().copied().unwrap_or(0);
            let Some(comp) = pending.pop() else {
                let e = self.nodes[here as usize]
                    .entry
                    .as_ref()
                    .ok_or_else(|| format!("{} does not exist", display(b"")))?;
                return Ok((self.path_of(here), e));
            };
            if comp == b".." {
                cur.pop();
                continue;
            }
            let Some(id) = self.lookup(here, &comp) else {
                let mut p = self.path_of(here);
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&comp);
                return Err(format!("{} does not exist in the tarball", display(&p)));
            };
            cur.push(id);
            let Some(e) = &self.nodes[id as usize].entry else {
                return Err(format!("{} does not exist", display(&self.path_of(id))));
            };
            match e.kind {
                Kind::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(format!(
                            "too many levels of symlinks at {}",
                            display(&self.path_of(id))
                        ));
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
                    let p = self.path_of(id);
                    if !pending.is_empty() {
                        return Err(format!("{} is not a directory", display(&p)));
                    }
                    let target = e.link.clone();
                    let t = self.get(&target).ok_or_else(|| {
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
                    return Err(format!("{} is not a directory", display(&self.path_of(id))))
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
        i.insert(b"", entry(Kind::Directory, ""));
        for (p, k, l) in items {
            i.insert(p.as_bytes(), entry(*k, l));
        }
        i
    }

    #[test]
    fn visits_every_path_once() {
        let i = index(&[
            ("a", Kind::Directory, ""),
            ("a/b/c", Kind::Regular, ""),
            ("d", Kind::Regular, ""),
        ]);
        let mut seen = Vec::new();
        i.visit(&mut |p, e| seen.push((String::from_utf8_lossy(p).into_owned(), e.implicit)));
        seen.sort();
        let want = [
            ("", false),
            ("a", false),
            ("a/b", true),
            ("a/b/c", false),
            ("d", false),
        ];
        let want: Vec<_> = want.iter().map(|(p, i)| (p.to_string(), *i)).collect();
        assert_eq!(seen, want);
        let mut below = Vec::new();
        i.visit_below(b"a", &mut |p, _| below.push(p.to_vec()));
        below.sort();
        assert_eq!(below, vec![b"b".to_vec(), b"b/c".to_vec()]);
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
