//! Deciding what to do with each archive entry, without touching the filesystem: path
//! sanitising (nothing may land outside the root) and the per-entry action. The extractor
//! (`extract.rs`) only carries these decisions out; the tarball builder runs the same planner
//! over a root filesystem at build time, so an archive the installer would refuse never ships.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::layout;
use crate::tar::header::{Entry, Kind};
use crate::tar::reader::{shown, MAX_PATH};

/// A path relative to the extraction root: components joined by `/`, none of them empty, `.`
/// or `..`. The empty path is the root itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SafePath(Vec<u8>);

impl SafePath {
    pub(crate) fn root() -> SafePath {
        SafePath(Vec::new())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The parent directory and the last component (`None` for the root).
    pub(crate) fn split_last(&self) -> Option<(SafePath, &[u8])> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => (SafePath(self.0[..i].to_vec()), &self.0[i + 1..]),
            None => (SafePath::root(), &self.0[..]),
        })
    }

    /// Whether `self` is a proper ancestor of `other`.
    pub(crate) fn is_ancestor_of(&self, other: &SafePath) -> bool {
        if self.0.is_empty() {
            return !other.0.is_empty();
        }
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0[self.0.len()] == b'/'
    }
}

impl fmt::Display for SafePath {
    /// `/path`, with control characters escaped: a hostile name must not break the one-line
    /// messages that carry it (a newline in a path would forge a second line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/")?;
        for c in String::from_utf8_lossy(&self.0).chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Why an entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) path: String,
    pub(crate) why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing archive entry {:?}: {}", self.path, self.why)
    }
}

impl std::error::Error for Refusal {}

/// Sanitises an archive path. Leading `/` and `./` are dropped (archives made with `-C dir .`
/// or `-P`); `..` is refused outright rather than resolved, as bsdtar does by default.
pub(crate) fn sanitize(raw: &[u8]) -> Result<SafePath, String> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("path contains '..' and would escape the root".into()),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(SafePath(out))
}

/// What to create for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Dir,
    File,
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry of the archive.
    HardLink(SafePath),
    Node,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub(crate) path: SafePath,
    pub(crate) action: Action,
    /// Written under a temporary name and renamed into place only at the commit (see
    /// [`layout::SWITCH_PATHS`]).
    pub(crate) deferred: bool,
}

/// Plans entries in archive order. Keeps what it needs to judge later entries: the archive's
/// symlinks (nothing may be written through them) and its files (hard links may only point at
/// earlier entries, never at something that happened to be on disk).
#[derive(Default)]
pub struct Planner {
    symlinks: HashSet<Vec<u8>>,
    /// [`prefix_hash`] of every path in `symlinks`, with a count (distinct paths may share a
    /// hash): checking every ancestor of a path costs one pass over it, where hashing each
    /// ancestor anew cost time quadratic in the depth (18 s for one 250,000-level path).
    symlink_hashes: HashMap<u64, u32>,
    linkable: HashSet<Vec<u8>>,
    deferred: Vec<SafePath>,
}

/// FNV-1a over a path's bytes, extendable one byte at a time, so the hashes of all ancestors
/// of a path come out of one pass over it.
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

fn prefix_hash(path: &[u8]) -> u64 {
    path.iter().fold(FNV_START, |h, &b| fnv(h, b))
}

fn switch_paths() -> impl Iterator<Item = SafePath> {
    layout::SWITCH_PATHS.iter().map(|p| SafePath(p.to_vec()))
}

impl Planner {
    pub fn new() -> Planner {
        Planner::default()
    }

    /// Decides what to do with `entry`, or why not.
    ///
    /// Long on purpose: the installer's security model in one place, one refusal per hostile
    /// shape (absolute and `..` paths, links out of the root, links through links, hard links
    /// to later or missing entries), each beside the rule it enforces.
    pub fn plan(&mut self, entry: &Entry) -> Result<Step, Refusal> {
        let refuse = |why: String| Refusal {
            path: String::from_utf8_lossy(&entry.path).into_owned(),
            why,
        };
        for (what, bytes) in [("path", &entry.path), ("link target", &entry.link)] {
            if bytes.len() > MAX_PATH {
                return Err(Refusal {
                    path: shown(&entry.path),
                    why: format!(
                        "{what} of {} bytes exceeds the limit of {MAX_PATH} bytes (MAX_PATH, Linux's PATH_MAX)",
                        bytes.len()
                    ),
                });
            }
        }
        let path = sanitize(&entry.path).map_err(refuse)?;
        if path.components().next() == Some(layout::DIR.as_bytes()) {
            return Err(refuse(format!(
                "/{} belongs to the installer; a root filesystem must not contain it",
                layout::DIR
            )));
        }
        if !self.symlinks.is_empty() {
            let bytes = path.as_bytes();
            let mut hash = FNV_START;
            for (i, &b) in bytes.iter().enumerate() {
                // At each '/', `hash` is that of the ancestor bytes[..i]; compare the bytes
                // only on a hash hit.
                if b == b'/'
                    && self.symlink_hashes.contains_key(&hash)
                    && self.symlinks.contains(&bytes[..i])
                {
                    return Err(refuse(format!(
                        "it lies under {}, which this archive made a symlink; refusing to write through it",
                        SafePath(bytes[..i].to_vec())
                    )));
                }
                hash = fnv(hash, b);
            }
        }
        if let Some(d) = self.deferred.iter().find(|d| d.is_ancestor_of(&path)) {
            return Err(refuse(format!(
                "it lies under {d}, which this archive made a non-directory"
            )));
        }
        let action = match entry.kind {
            Kind::Directory => Action::Dir,
            Kind::Regular => Action::File,
            Kind::Symlink => {
                if entry.link.is_empty() {
                    return Err(refuse("symlink with an empty target".into()));
                }
                Action::Symlink(entry.link.clone())
            }
            Kind::HardLink => {
                let target = sanitize(&entry.link)
                    .map_err(|why| refuse(format!("hard link target: {why}")))?;
                if !self.linkable.contains(target.as_bytes()) {
                    return Err(refuse(format!(
                        "hard link to {target}, which is not an earlier file of this archive"
                    )));
                }
                Action::HardLink(target)
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => Action::Node,
            Kind::Other(_) => return Err(refuse(format!("{} is not supported", entry.kind))),
        };
        if path.is_root() && action != Action::Dir {
            return Err(refuse("the root can only be a directory".into()));
        }
        // Re-declaring a path changes its meaning for later entries.
        if self.symlinks.remove(path.as_bytes()) {
            let h = prefix_hash(path.as_bytes());
            if let Some(n) = self.symlink_hashes.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    self.symlink_hashes.remove(&h);
                }
            }
        }
        self.linkable.remove(path.as_bytes());
        match action {
            Action::Symlink(_) => {
                self.symlinks.insert(path.as_bytes().to_vec());
                *self
                    .symlink_hashes
                    .entry(prefix_hash(path.as_bytes()))
                    .or_insert(0) += 1;
                self.linkable.insert(path.as_bytes().to_vec());
            }
            Action::File | Action::HardLink(_) | Action::Node => {
                self.linkable.insert(path.as_bytes().to_vec());
            }
            Action::Dir => {}
        }
        let deferred =
            action != Action::Dir && switch_paths().any(|s| s == path || path.is_ancestor_of(&s));
        if deferred {
            self.deferred.push(path.clone());
        }
        Ok(Step {
            path,
            action,
            deferred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, path: &str, link: &str) -> Entry {
        let mut e = Entry::new(kind, path.as_bytes().to_vec());
        e.link = link.as_bytes().to_vec();
        e
    }

    #[test]
    fn sanitize_normalises_and_refuses_dotdot() {
        assert_eq!(sanitize(b"./etc/passwd").unwrap().as_bytes(), b"etc/passwd");
        assert_eq!(sanitize(b"/etc//./x/").unwrap().as_bytes(), b"etc/x");
        assert!(sanitize(b"./").unwrap().is_root());
        assert!(sanitize(b"../escape").is_err());
        assert!(sanitize(b"a/../../b").is_err());
        assert!(sanitize(b"a/..").is_err());
        assert_eq!(sanitize(b"a/..b").unwrap().as_bytes(), b"a/..b");
    }

    #[test]
    fn safe_path_helpers() {
        let p = sanitize(b"a/b/c").unwrap();
        let (parent, name) = p.split_last().unwrap();
        assert_eq!((parent.as_bytes(), name), (&b"a/b"[..], &b"c"[..]));
        assert!(sanitize(b"a").unwrap().is_ancestor_of(&p));
        assert!(!sanitize(b"a/b/c").unwrap().is_ancestor_of(&p));
        assert!(!sanitize(b"a/bb")
            .unwrap()
            .is_ancestor_of(&sanitize(b"a/b").unwrap()));
        assert!(SafePath::root().is_ancestor_of(&p));
    }

    #[test]
    fn refuses_escapes() {
        let mut p = Planner::new();
        assert!(p.plan(&entry(Kind::Regular, "../escape", "")).is_err());
        assert!(p
            .plan(&entry(Kind::HardLink, "./x", "../../etc/shadow"))
            .is_err());
        assert!(
            p.plan(&entry(Kind::HardLink, "./x", "/etc/shadow"))
                .is_err(),
            "not in the archive"
        );
        p.plan(&entry(Kind::Symlink, "./evil", "/")).unwrap();
        let err = p
            .plan(&entry(Kind::Regular, "./evil/etc/shadow", ""))
            .unwrap_err();
        assert!(err.why.contains("symlink"), "{err}");
        // A directory that replaces the symlink makes the path usable again.
        p.plan(&entry(Kind::Directory, "./evil/", "")).unwrap();
        p.plan(&entry(Kind::Regular, "./evil/ok", "")).unwrap();
        assert!(p
            .plan(&entry(
                Kind::Regular,
                "./nixos-wsl-installer/rootfs.tar.gz",
                ""
            ))
            .is_err());
        assert!(p.plan(&entry(Kind::Regular, "./", "")).is_err());
        assert!(p.plan(&entry(Kind::Other(b'S'), "./sparse", "")).is_err());
    }

    #[test]
    fn hard_links_point_at_earlier_files_absolute_or_not() {
        let mut p = Planner::new();
        p.plan(&entry(Kind::Regular, "./nix/store/a", "")).unwrap();
        let s = p
            .plan(&entry(Kind::HardLink, "./nix/store/b", "/nix/store/a"))
            .unwrap();
        assert_eq!(
            s.action,
            Action::HardLink(sanitize(b"nix/store/a").unwrap())
        );
        let s = p
            .plan(&entry(Kind::HardLink, "./c", "./nix/store/b"))
            .unwrap();
        assert!(matches!(s.action, Action::HardLink(_)));
    }

    #[test]
    fn passwd_and_its_non_directory_ancestors_are_deferred() {
        let mut p = Planner::new();
        assert!(
            !p.plan(&entry(Kind::Directory, "./etc/", ""))
                .unwrap()
                .deferred
        );
        assert!(
            p.plan(&entry(Kind::Regular, "./etc/passwd", ""))
                .unwrap()
                .deferred
        );
        assert!(
            !p.plan(&entry(Kind::Regular, "./etc/group", ""))
                .unwrap()
                .deferred
        );
        let mut p = Planner::new();
        assert!(
            p.plan(&entry(Kind::Symlink, "./etc", "static"))
                .unwrap()
                .deferred
        );
        assert!(p.plan(&entry(Kind::Regular, "./etc/x", "")).is_err());
    }
}
