//! Carrying out the planner's decisions on disk: the extractor.
//!
//! Everything is done relative to a directory descriptor of the root, one path component at a
//! time with `O_NOFOLLOW`, so no entry can reach outside the root through `..` or through a
//! symlink (one in the archive or one already on disk): bsdtar's secure default, enforced by
//! construction rather than by string checks alone.
//!
//! Interruption safety comes from idempotence: a new path is created in place (`O_EXCL`), an
//! existing one is replaced by writing a temporary sibling and renaming it over (never by
//! writing into the existing file, which may be a running program or a hard link). Running the
//! extraction again after a kill therefore converges to the same tree. Directory modes and
//! times are applied at the end (children change a directory's mtime, and a 0555 store
//! directory must stay writable until it is complete). Deferred entries (`/etc/passwd`) stay
//! under their temporary names until the commit.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::layout::Rename;
use super::plan::{Action, Planner, SafePath, Step};
use crate::tar::header::{Entry, Kind};
use crate::tar::reader::Reader;

/// Opens `name` relative to `dir`, always close-on-exec.
pub fn open_at(dir: RawFd, name: &[u8], flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = openat(Some(dir), name, flags | OFlag::O_CLOEXEC, mode)?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory by absolute or relative host path.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW
}

/// Unlinks every non-directory in the directory `dir` and returns the names of its
/// subdirectories (all of them, so each directory is listed once however wide it is).
fn clear_files(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let fd = dir.try_clone()?;
    let mut d = nix::dir::Dir::from_fd(fd.into_raw_fd())?;
    let mut names = Vec::new();
    for item in d.iter() {
        let item = item?;
        let child = item.file_name().to_bytes();
        if child != b"." && child != b".." {
            names.push(child.to_vec());
        }
    }
    drop(d);
    let mut subdirs = Vec::new();
    for child in names {
        match unlinkat(
            Some(dir.as_raw_fd()),
            &child[..],
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) | Err(Errno::EPERM) => subdirs.push(child),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(subdirs)
}

/// Removes `name` in `parent` whatever it is, without following symlinks; absent is fine.
///
/// Iterative, with at most two directory descriptors open at a time: the directory being
/// cleared, and briefly its parent, reached again through `..` (the tree is ours and nothing
/// renames inside it meanwhile). The recursive version overflowed the stack on a tree about
/// 12,000 deep (SIGSEGV) and left it behind. Memory: the names of the subdirectories still to
/// visit on the current path, at most the tree's entries.
pub fn remove_tree(parent: RawFd, name: &[u8]) -> io::Result<()> {
    match unlinkat(Some(parent), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e.into()),
    }
    let mut cur = match open_at(parent, name, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // One level per directory entered below `name`: (its name, its subdirectories not yet
    // removed). The top level's pending list is `pending`.
    let mut levels: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    let mut pending = clear_files(&cur)?;
    loop {
        if let Some(sub) = pending.pop() {
            match open_at(cur.as_raw_fd(), &sub, dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    let below = clear_files(&fd)?;
                    levels.push((sub, std::mem::replace(&mut pending, below)));
                    cur = fd;
                }
                Err(Errno::ENOENT) => {}
                // Replaced by a non-directory meanwhile: unlink it.
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    match unlinkat(Some(cur.as_raw_fd()), &sub[..], UnlinkatFlags::NoRemoveDir) {
                        Ok(()) | Err(Errno::ENOENT) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        // `cur` is empty now: go up and remove it.
        let Some((done, rest)) = levels.pop() else {
            break;
        };
        let up = open_at(cur.as_raw_fd(), b"..", dir_flags(), Mode::empty())?;
        drop(cur);
        match unlinkat(Some(up.as_raw_fd()), &done[..], UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        cur = up;
        pending = rest;
    }
    drop(cur);
    match unlinkat(Some(parent), name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Levels of the current path whose directory descriptors [`DirStack`] keeps open. Deeper
/// levels keep only their name (and the deepest level its descriptor), so a path of any
/// depth costs at most `OPEN_DIRS + 1` descriptors, never `EMFILE`; revisiting a deeper
/// directory re-walks from level `OPEN_DIRS` (work linear in the path). Real trees are
/// rarely a dozen levels deep.
const OPEN_DIRS: usize = 64;

/// Open directories along the current path, so a sorted archive costs one `openat` per new
/// directory rather than one per path component per entry.
#[derive(Default)]
struct DirStack {
    /// One per level: its name, and its descriptor for the first [`OPEN_DIRS`] levels and
    /// the last one.
    open: Vec<(Vec<u8>, Option<OwnedFd>)>,
}

impl DirStack {
    fn clear(&mut self) {
        self.open.clear();
    }

    /// A descriptor of directory `dir` (relative to `root`), opened without following any
    /// symlink. Missing directories are created (0700 until their entry says otherwise) when
    /// `create` is set, as tar does for archives that omit parent entries.
    fn get(&mut self, root: RawFd, dir: &SafePath, create: bool) -> Result<RawFd> {
        let comps: Vec<&[u8]> = dir.components().collect();
        let mut depth = self
            .open
            .iter()
            .zip(&comps)
            .take_while(|((name, _), comp)| name[..] == comp[..])
            .count();
        if depth == comps.len() && depth == self.open.len() {
            if let Some((_, Some(fd))) = self.open.last() {
                return Ok(fd.as_raw_fd());
            }
        }
        // Keep the common levels that still hold a descriptor; re-walk the rest.
        depth = depth.min(self.open.len());
        while depth > 0 && self.open[depth - 1].1.is_none() {
            depth -= 1;
        }
        self.open.truncate(depth);
        for comp in &comps[depth..] {
            let parent = match self.open.last() {
                Some((_, Some(fd))) => fd.as_raw_fd(),
                _ => root,
            };
            let fd = match open_at(parent, comp, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(Some(parent), *comp, Mode::from_bits_truncate(0o700)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("creating directory {}", prefix(dir, depth))
                            })
                        }
                    }
                    open_at(parent, comp, dir_flags(), Mode::empty())
                        .with_context(|| format!("opening directory {}", prefix(dir, depth)))?
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    let what = match fstatat(Some(parent), *comp, AtFlags::AT_SYMLINK_NOFOLLOW) {
                        Ok(st)
                            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
                                == SFlag::S_IFLNK =>
                        {
                            "a symlink; refusing to write through it"
                        }
                        _ => "not a directory",
                    };
                    bail!("{} is {what}", prefix(dir, depth));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("opening directory {}", prefix(dir, depth)))
                }
            };
            // The previous level stops being the deepest: beyond OPEN_DIRS it gives its
            // descriptor up (after its child is open, which no longer needs it).
            let levels = self.open.len();
            if levels > OPEN_DIRS {
                self.open[levels - 1].1 = None;
            }
            self.open.push((comp.to_vec(), Some(fd)));
            depth += 1;
        }
        Ok(match self.open.last() {
            Some((_, Some(fd))) => fd.as_raw_fd(),
            _ => root,
        })
    }
}

/// `/a/b` for the first `depth + 1` components of `dir`.
fn prefix(dir: &SafePath, depth: usize) -> String {
    // Control characters escaped: the message must stay one line.
    let parts: Vec<String> = dir
        .components()
        .take(depth + 1)
        .map(|c| {
            lossy(c)
                .chars()
                .map(|ch| {
                    if ch.is_control() {
                        ch.escape_default().collect()
                    } else {
                        ch.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("/{}", parts.join("/"))
}

fn is_dir(parent: RawFd, name: &[u8]) -> bool {
    matches!(fstatat(Some(parent), name, AtFlags::AT_SYMLINK_NOFOLLOW),
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// `renameat2(dir, a, dir, b, RENAME_EXCHANGE)`: atomically swaps two names. The nix crate
/// wraps renameat2 only for glibc targets; we build static musl binaries.
fn exchange(dir: RawFd, a: &[u8], b: &[u8]) -> nix::Result<()> {
    const RENAME_EXCHANGE: libc::c_uint = 1 << 1; // linux/fs.h
    let a = std::ffi::CString::new(a).map_err(|_| Errno::EINVAL)?;
    let b = std::ffi::CString::new(b).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call; the syscall
    // only reads them.
    let res = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir,
            a.as_ptr(),
            dir,
            b.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    Errno::result(res).map(drop)
}

/// Moves `tmp` over `name` (both in `parent`). A directory in the way is swapped out with
/// `RENAME_EXCHANGE` and then deleted, so `name` never disappears. Returns whether a
/// directory was replaced (cached descriptors below it are stale then).
pub(crate) fn install_tmp(parent: RawFd, tmp: &[u8], name: &[u8]) -> io::Result<bool> {
    match renameat(Some(parent), tmp, Some(parent), name) {
        Ok(()) => Ok(false),
        Err(Errno::EISDIR) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) if is_dir(parent, name) => {
            match exchange(parent, tmp, name) {
                Ok(()) => remove_tree(parent, tmp)?,
                Err(Errno::EINVAL) => {
                    // Filesystem without RENAME_EXCHANGE: a short window without `name`.
                    remove_tree(parent, name)?;
                    renameat(Some(parent), tmp, Some(parent), name)?;
                }
                Err(e) => return Err(e.into()),
            }
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// How entries' owners are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// Numeric owners from the archive (what root gets, like `tar --same-owner`).
    Archive,
    /// Leave files owned by the extracting user (unprivileged runs).
    Mine,
}

impl Owners {
    pub fn default_for_euid() -> Owners {
        if nix::unistd::geteuid().is_root() {
            Owners::Archive
        } else {
            Owners::Mine
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub(crate) entries: u64,
    pub(crate) data_bytes: u64,
}

struct DirMeta {
    path: SafePath,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
}

/// Where a created object ended up.
enum Placed {
    Final,
    Tmp(Vec<u8>),
}

/// Thrown by the test hook that stops an extraction after a given number of steps.
#[derive(Debug)]
pub(crate) struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by the test hook")
    }
}

impl std::error::Error for Stopped {}

pub struct Extractor {
    root: OwnedFd,
    root_dev: u64,
    dest: DirStack,
    links: DirStack,
    planner: Planner,
    dirs: Vec<DirMeta>,
    deferred: Vec<Rename>,
    owners: Owners,
    /// Whether the planner's deferred entries wait for the commit (the installer) or are
    /// written in place like everything else (plain extraction).
    defer: bool,
    seq: u64,
    stats: Stats,
    /// The last parent directory checked by [`Extractor::foreign`] and its verdict.
    foreign_cache: Option<(SafePath, bool)>,
}

fn timespec(secs: i64) -> TimeSpec {
    TimeSpec::new(secs, 0)
}

/// Sets the modification (and access) time of `path` in `parent`, not following a symlink.
fn set_mtime(parent: RawFd, path: &[u8], mtime: i64) -> nix::Result<()> {
    utimensat(
        Some(parent),
        path,
        &timespec(mtime),
        &timespec(mtime),
        UtimensatFlags::NoFollowSymlink,
    )
}

/// Where an entry goes: the open directory it goes into, that directory's path, and the name.
struct Placing<'a> {
    parent: RawFd,
    parent_path: &'a SafePath,
    name: &'a [u8],
    /// Created under a temporary name and renamed into place at the end (see `place`).
    deferred: bool,
}

impl Extractor {
    /// An extractor for the installer: `/etc/passwd` waits for the commit (see
    /// [`Extractor::finish`] and [`apply_renames`]).
    pub fn for_installer(root: OwnedFd, owners: Owners) -> Result<Extractor> {
        let mut x = Extractor::new(root, owners)?;
        x.defer = true;
        Ok(x)
    }

    /// A plain extractor: every entry goes straight to its place.
    pub fn new(root: OwnedFd, owners: Owners) -> Result<Extractor> {
        let root_dev = fstat(root.as_raw_fd())
            .context("examining the extraction root")?
            .st_dev;
        Ok(Extractor {
            root,
            root_dev,
            dest: DirStack::default(),
            links: DirStack::default(),
            planner: Planner::new(),
            dirs: Vec::new(),
            deferred: Vec::new(),
            owners,
            defer: false,
            seq: 0,
            stats: Stats::default(),
            foreign_cache: None,
        })
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    fn tmp_name(&self) -> Vec<u8> {
        // Deterministic per entry, so a rerun after a kill reuses (and clears) the same name
        // instead of leaving a stray temporary behind.
        format!(".nixos-wsl-part-{}", self.seq).into_bytes()
    }

    /// Extracts every entry of `reader`, calling `progress` with the archive offset after each
    /// and `hook` with the step count (the test hook returns `false` to stop).
    pub fn extract_all<R: BufRead>(
        &mut self,
        reader: &mut Reader<R>,
        progress: &mut dyn FnMut(u64),
        hook: &mut dyn FnMut(u64) -> bool,
    ) -> Result<()> {
        while let Some(entry) = reader
            .next_entry()
            .context("reading the root filesystem tarball")?
        {
            self.entry(&entry, reader)?;
            self.seq += 1;
            self.stats.entries += 1;
            progress(reader.offset());
            if !hook(self.seq) {
                return Err(anyhow!(Stopped));
            }
        }
        Ok(())
    }

    /// Extracts one entry (its data is read from `reader`).
    pub(crate) fn entry<R: BufRead>(
        &mut self,
        entry: &Entry,
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let step = self.planner.plan(entry)?;
        let what = step.path.to_string();
        self.apply(&step, entry, reader)
            .with_context(|| format!("extracting {what}"))
    }

    fn apply<R: BufRead>(
        &mut self,
        step: &Step,
        entry: &Entry,
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let step = &Step {
            deferred: step.deferred && self.defer,
            ..step.clone()
        };
        let Some((parent_path, name)) = step.path.split_last() else {
            // The root itself: only its metadata.
            self.dirs.push(self.dir_meta(&step.path, entry));
            return Ok(());
        };
        let parent = self.dest.get(self.root.as_raw_fd(), &parent_path, true)?;
        if self.foreign(parent, &parent_path)? {
            log::debug!("skipping {}: inside a mount point", step.path);
            return Ok(());
        }
        let at = Placing {
            parent,
            parent_path: &parent_path,
            name,
            deferred: step.deferred,
        };
        match &step.action {
            Action::Dir => self.make_dir(&at, &step.path, entry),
            Action::File => self.make_file(&at, entry, reader),
            Action::Symlink(target) => self.make_symlink(&at, target, entry),
            Action::HardLink(target) => self.hard_link(step, target, parent, &parent_path, name),
            Action::Node => self.make_node(&at, entry),
        }
    }

    fn make_dir(&mut self, at: &Placing, path: &SafePath, entry: &Entry) -> Result<()> {
        let (parent, name) = (at.parent, at.name);
        match mkdirat(Some(parent), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) if is_dir(parent, name) => {}
            Err(Errno::EEXIST) => {
                // A file or symlink where the archive wants a directory.
                remove_tree(parent, name)?;
                mkdirat(Some(parent), name, Mode::from_bits_truncate(0o700))?;
            }
            Err(e) => return Err(e.into()),
        }
        self.dirs.push(self.dir_meta(path, entry));
        Ok(())
    }

    fn make_file<R: BufRead>(
        &mut self,
        at: &Placing,
        entry: &Entry,
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let (fd, placed) = self.place(at.parent, at.name, at.deferred, |p, n| {
            open_at(p, n, flags, Mode::from_bits_truncate(0o600))
        })?;
        let mut file = File::from(fd);
        self.copy_data(&mut file, reader)?;
        if self.owners == Owners::Archive {
            fchown(
                file.as_raw_fd(),
                Some(uid(entry.uid)?),
                Some(gid(entry.gid)?),
            )?;
        }
        // After chown, which clears setuid/setgid bits.
        fchmod(
            file.as_raw_fd(),
            Mode::from_bits_truncate(entry.mode & 0o7777),
        )?;
        futimens(
            file.as_raw_fd(),
            &timespec(entry.mtime),
            &timespec(entry.mtime),
        )?;
        drop(file);
        self.finish_placement(at.parent, at.parent_path, at.name, placed, at.deferred)
    }

    fn make_symlink(&mut self, at: &Placing, target: &[u8], entry: &Entry) -> Result<()> {
        let ((), placed) = self.place(at.parent, at.name, at.deferred, |p, n| {
            symlinkat(target, Some(p), n)
        })?;
        let path = self.own_placed(at.parent, at.name, &placed, entry)?;
        set_mtime(at.parent, &path, entry.mtime)?;
        self.finish_placement(at.parent, at.parent_path, at.name, placed, at.deferred)
    }

    fn make_node(&mut self, at: &Placing, entry: &Entry) -> Result<()> {
        let kind = match entry.kind {
            Kind::CharDevice => SFlag::S_IFCHR,
            Kind::BlockDevice => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let dev = nix::sys::stat::makedev(u64::from(entry.dev_major), u64::from(entry.dev_minor));
        let perm = Mode::from_bits_truncate(0o600);
        let ((), placed) = self
            .place(at.parent, at.name, at.deferred, |p, n| {
                mknodat(Some(p), n, kind, perm, dev)
            })
            .map_err(|e| match e.downcast_ref::<Errno>() {
                Some(Errno::EPERM) => anyhow!("creating device nodes needs root"),
                _ => e,
            })?;
        let path = self.own_placed(at.parent, at.name, &placed, entry)?;
        fchmodat(
            Some(at.parent),
            &path[..],
            Mode::from_bits_truncate(entry.mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )?;
        set_mtime(at.parent, &path, entry.mtime)?;
        self.finish_placement(at.parent, at.parent_path, at.name, placed, at.deferred)
    }

    /// Whether `parent` is on another filesystem than the root: a mount point of the running
    /// system (`/dev`, `/proc`, `/sys`, `/run`, `/mnt/wsl` in a WSL distribution). Entries
    /// below it are skipped: WSL rebuilds those trees at every start, so they would be lost
    /// anyway, and writing into them changes the live system (a bind-mounted node cannot be
    /// replaced at all, EBUSY; WSL's devtmpfs is one instance for the whole VM, so a `/dev/null`
    /// with the archive's mode would be every distribution's). Their directories' own
    /// metadata is likewise left alone in [`Extractor::finish`].
    fn foreign(&mut self, parent: RawFd, parent_path: &SafePath) -> Result<bool> {
        if let Some((path, verdict)) = &self.foreign_cache {
            if path == parent_path {
                return Ok(*verdict);
            }
        }
        let st = fstat(parent).with_context(|| format!("examining {parent_path}"))?;
        let verdict = st.st_dev != self.root_dev;
        self.foreign_cache = Some((parent_path.clone(), verdict));
        Ok(verdict)
    }

    fn dir_meta(&self, path: &SafePath, entry: &Entry) -> DirMeta {
        DirMeta {
            path: path.clone(),
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
        }
    }

    /// Creates an object with `create` at `name`, or at a fresh temporary name when `name`
    /// exists (or the entry is deferred).
    fn place<T>(
        &mut self,
        parent: RawFd,
        name: &[u8],
        deferred: bool,
        mut create: impl FnMut(RawFd, &[u8]) -> nix::Result<T>,
    ) -> Result<(T, Placed)> {
        if !deferred {
            match create(parent, name) {
                Ok(t) => return Ok((t, Placed::Final)),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let tmp = self.tmp_name();
        remove_tree(parent, &tmp)?;
        let t = create(parent, &tmp)?;
        Ok((t, Placed::Tmp(tmp)))
    }

    /// Renames a temporary into place, or records it for the commit if deferred.
    /// The name a symlink or node was created under (`placed`), given the archive's owner
    /// when owners are kept; by name and without following, as neither can be opened.
    fn own_placed(
        &self,
        parent: RawFd,
        name: &[u8],
        placed: &Placed,
        entry: &Entry,
    ) -> Result<Vec<u8>> {
        let at = match placed {
            Placed::Final => name.to_vec(),
            Placed::Tmp(t) => t.clone(),
        };
        if self.owners == Owners::Archive {
            fchownat(
                Some(parent),
                &at[..],
                Some(uid(entry.uid)?),
                Some(gid(entry.gid)?),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(at)
    }

    fn finish_placement(
        &mut self,
        parent: RawFd,
        parent_path: &SafePath,
        name: &[u8],
        placed: Placed,
        deferred: bool,
    ) -> Result<()> {
        let Placed::Tmp(tmp) = placed else {
            return Ok(());
        };
        if deferred {
            let join = |n: &[u8]| {
                let mut p = parent_path.as_bytes().to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(n);
                p
            };
            self.deferred.push(Rename {
                tmp: join(&tmp),
                path: join(name),
            });
            return Ok(());
        }
        if install_tmp(parent, &tmp, name)? {
            self.dest.clear();
            self.links.clear();
            self.foreign_cache = None;
        }
        Ok(())
    }

    fn hard_link(
        &mut self,
        step: &Step,
        target: &SafePath,
        parent: RawFd,
        parent_path: &SafePath,
        name: &[u8],
    ) -> Result<()> {
        // A deferred target exists only under its temporary name so far.
        let deferred_target = self
            .deferred
            .iter()
            .find(|r| r.path == target.as_bytes())
            .map(|r| r.tmp.clone());
        let target_path = match deferred_target {
            Some(tmp) => super::plan::sanitize(&tmp).map_err(|e| anyhow!(e))?,
            None => target.clone(),
        };
        let (tparent_path, tname) = target_path
            .split_last()
            .ok_or_else(|| anyhow!("hard link to the root"))?;
        let tparent = self
            .links
            .get(self.root.as_raw_fd(), &tparent_path, false)
            .with_context(|| format!("opening the hard link target {target}"))?;
        let tname = tname.to_vec();
        if !step.deferred {
            match linkat(
                Some(tparent),
                &tname[..],
                Some(parent),
                name,
                AtFlags::empty(),
            ) {
                Ok(()) => return Ok(()),
                Err(Errno::EEXIST) => {
                    // Already linked by an earlier run?
                    let a = fstatat(Some(tparent), &tname[..], AtFlags::AT_SYMLINK_NOFOLLOW)?;
                    if let Ok(b) = fstatat(Some(parent), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
                            return Ok(());
                        }
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("linking to {target}")),
            }
        }
        let tmp = self.tmp_name();
        remove_tree(parent, &tmp)?;
        linkat(
            Some(tparent),
            &tname[..],
            Some(parent),
            &tmp[..],
            AtFlags::empty(),
        )
        .with_context(|| format!("linking to {target}"))?;
        self.finish_placement(parent, parent_path, name, Placed::Tmp(tmp), step.deferred)
    }

    fn copy_data<R: BufRead>(&mut self, file: &mut File, reader: &mut Reader<R>) -> Result<()> {
        loop {
            let chunk = reader
                .data()
                .context("reading the root filesystem tarball")?;
            if chunk.is_empty() {
                return Ok(());
            }
            let n = chunk.len();
            file.write_all(chunk)?;
            reader.consume(n);
            self.stats.data_bytes += n as u64;
        }
    }

    /// Applies directory owners, modes and times, deepest first; returns the renames left for
    /// the commit. Directories on other filesystems (mount points such as `/proc` or
    /// `/mnt/wsl` in a running WSL distribution) are left alone.
    pub fn finish(mut self) -> Result<Vec<Rename>> {
        let dirs = std::mem::take(&mut self.dirs);
        let mut stack = DirStack::default();
        for d in dirs.iter().rev() {
            let fd = if d.path.is_root() {
                self.root_fd()
            } else {
                match stack.get(self.root_fd(), &d.path, false) {
                    Ok(fd) => fd,
                    Err(_) => continue, // replaced by a later entry
                }
            };
            let st = fstat(fd).with_context(|| format!("examining {}", d.path))?;
            if st.st_dev != self.root_dev {
                continue;
            }
            (|| -> Result<()> {
                if self.owners == Owners::Archive {
                    fchown(fd, Some(uid(d.uid)?), Some(gid(d.gid)?))?;
                }
                fchmod(fd, Mode::from_bits_truncate(d.mode & 0o7777))?;
                futimens(fd, &timespec(d.mtime), &timespec(d.mtime))?;
                Ok(())
            })()
            .with_context(|| format!("setting owner, mode and time of {}", d.path))?;
        }
        Ok(std::mem::take(&mut self.deferred))
    }
}

fn uid(id: u64) -> Result<Uid> {
    Ok(Uid::from_raw(
        u32::try_from(id).map_err(|_| anyhow!("uid {id} out of range"))?,
    ))
}

fn gid(id: u64) -> Result<Gid> {
    Ok(Gid::from_raw(
        u32::try_from(id).map_err(|_| anyhow!("gid {id} out of range"))?,
    ))
}

/// Performs the commit's renames in order; a rename whose temporary is gone was done by an
/// earlier, interrupted run.
pub(crate) fn apply_renames(
    root: RawFd,
    renames: &[Rename],
    hook: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let mut stack = DirStack::default();
    for r in renames {
        let tmp = super::plan::sanitize(&r.tmp).map_err(|e| anyhow!(e))?;
        let path = super::plan::sanitize(&r.path).map_err(|e| anyhow!(e))?;
        let (tparent, tname) = tmp
            .split_last()
            .ok_or_else(|| anyhow!("bad journal entry"))?;
        let (parent_path, name) = path
            .split_last()
            .ok_or_else(|| anyhow!("bad journal entry"))?;
        if tparent != parent_path {
            bail!("bad journal entry: {tmp} and {path} are not siblings");
        }
        let parent = stack.get(root, &parent_path, false)?;
        match fstatat(Some(parent), tname, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("examining {tmp}")),
            Ok(_) => {}
        }
        if install_tmp(parent, tname, name).with_context(|| format!("moving {path} into place"))? {
            stack.clear();
        }
        if !hook() {
            return Err(anyhow!(Stopped));
        }
    }
    Ok(())
}
