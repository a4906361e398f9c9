//! The first-boot installer: unpacks the embedded root filesystem over the installer system
//! and commits the switch, safely across interruptions.
//!
//! Phases (each one idempotent, so a killed install is completed by the next launch):
//!
//! 1. **Verify** the embedded tarball against the manifest (size, SHA-256). Nothing has been
//!    touched yet; a mismatch leaves the installer system exactly as it was.
//! 2. **Extract** over the root (`extract.rs`), with the `in-progress` marker present.
//!    `/etc/passwd` goes to a temporary name: while the installer's passwd is in place, WSL
//!    keeps starting the installer, which simply extracts again.
//! 3. **Seal**: directory metadata, `syncfs`, then the commit journal (the pending renames) is
//!    written and synced, and only then the tarball, manifest and marker are removed.
//! 4. **Commit**: the journal's renames (`/etc/passwd` last), `syncfs`; from here on WSL starts
//!    the new system's shell.
//! 5. **Clean up** the installer directory.
//!
//! The state on disk alone says which phase to resume ([`decide_state`]); an exclusive `flock`
//! on the installer directory serialises concurrent first launches.

pub mod extract;
pub mod handover;
pub(crate) mod layout;
pub mod plan;
pub(crate) mod progress;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{fsync, syncfs, unlinkat, UnlinkatFlags};

use crate::tar::decompress;
use crate::tar::reader::Reader;
use extract::{open_at, open_dir, Extractor, Owners, Stats, Stopped};
use layout::Manifest;

/// How an installation is run.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) progress: progress::Mode,
    pub(crate) owners: Owners,
    /// Test hook: stop after this many steps (one per entry, then one per commit step).
    pub stop_after: Option<u64>,
    /// With `stop_after`: die by SIGKILL instead of returning an error, a real crash.
    pub kill_at_stop: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            progress: progress::Mode::for_stderr(),
            owners: Owners::default_for_euid(),
            stop_after: None,
            kill_at_stop: false,
        }
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// There was nothing (left) to install.
    AlreadyInstalled,
    /// The root filesystem was unpacked (or an interrupted install completed).
    Installed(Stats),
}

/// The phase to resume, from what is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Fresh,
    Resume,
    Commit,
    /// Installed; the installer directory may still need removing.
    Installed,
}

/// Decides the phase from the presence of the installer's files. The manifest is removed only
/// after the journal is safely written, so "manifest present" always means "extract (again)".
pub(crate) fn decide_state(dir: bool, manifest: bool, marker: bool, journal: bool) -> State {
    match (dir, manifest, marker, journal) {
        (false, ..) => State::Installed,
        (true, true, false, _) => State::Fresh,
        (true, true, true, _) => State::Resume,
        (true, false, _, true) => State::Commit,
        (true, false, _, false) => State::Installed,
    }
}

/// The embedded tarball does not match its manifest.
#[derive(Debug)]
pub struct Damaged(pub(crate) String);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the embedded root filesystem is damaged: {}; nothing was changed",
            self.0
        )
    }
}

impl std::error::Error for Damaged {}

fn exists(dir: RawFd, name: &str) -> Result<bool> {
    match fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("examining /{}/{name}", layout::DIR)),
    }
}

fn read_small(dir: RawFd, name: &str) -> Result<Vec<u8>> {
    let fd = open_at(
        dir,
        name.as_bytes(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .with_context(|| format!("opening /{}/{name}", layout::DIR))?;
    let mut data = Vec::new();
    File::from(fd)
        .take(1 << 20)
        .read_to_end(&mut data)
        .with_context(|| format!("reading /{}/{name}", layout::DIR))?;
    Ok(data)
}

/// Writes `name` in `dir` atomically and durably: temporary, fsync, rename, fsync directory.
fn write_durably(dir: RawFd, name: &str, data: &[u8]) -> Result<()> {
    let tmp = format!("{name}.tmp");
    let _ = unlinkat(Some(dir), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    let fd = open_at(
        dir,
        tmp.as_bytes(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("creating /{}/{tmp}", layout::DIR))?;
    let mut f = File::from(fd);
    f.write_all(data)
        .with_context(|| format!("writing /{}/{tmp}", layout::DIR))?;
    fsync(f.as_raw_fd()).with_context(|| format!("syncing /{}/{tmp}", layout::DIR))?;
    drop(f);
    nix::fcntl::renameat(Some(dir), tmp.as_str(), Some(dir), name)
        .with_context(|| format!("renaming /{}/{tmp}", layout::DIR))?;
    fsync(dir).context("syncing the installer directory")?;
    Ok(())
}

fn remove(dir: RawFd, name: &str) -> Result<()> {
    match unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing /{}/{name}", layout::DIR)),
    }
}

/// Checks the embedded tarball against the manifest; returns it opened and rewound.
pub(crate) fn verify_embedded(dir: RawFd, manifest: &Manifest) -> Result<File> {
    let fd = match open_at(
        dir,
        layout::ROOTFS.as_bytes(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            return Err(anyhow!(Damaged(format!(
                "/{}/{} is missing",
                layout::DIR,
                layout::ROOTFS
            ))))
        }
        Err(e) => return Err(e).context("opening the embedded root filesystem"),
    };
    let size = fstat(fd.as_raw_fd())
        .context("examining the embedded root filesystem")?
        .st_size as u64;
    if size != manifest.size {
        return Err(anyhow!(Damaged(format!(
            "it has {size} bytes, the manifest says {} (truncated or replaced download?)",
            manifest.size
        ))));
    }
    let mut file = File::from(fd);
    let (digest, _) = layout::sha256(&mut file).context("reading the embedded root filesystem")?;
    if digest != manifest.sha256 {
        return Err(anyhow!(Damaged(format!(
            "its SHA-256 is {}, the manifest says {}",
            layout::hex(&digest),
            layout::hex(&manifest.sha256)
        ))));
    }
    file.seek(SeekFrom::Start(0))
        .context("rewinding the embedded root filesystem")?;
    Ok(file)
}

/// Counts steps for the test hook.
struct Hook {
    steps: u64,
    stop_after: Option<u64>,
    kill: bool,
}

impl Hook {
    /// `false` when the hook says stop (or never returns, with `kill`).
    fn tick(&mut self) -> bool {
        self.steps += 1;
        match self.stop_after {
            Some(n) if self.steps >= n => {
                if self.kill {
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                }
                false
            }
            _ => true,
        }
    }

    fn check(&mut self) -> Result<()> {
        if self.tick() {
            Ok(())
        } else {
            Err(anyhow!(Stopped))
        }
    }
}

/// Installs the embedded root filesystem into `root` if the installer's files say there is
/// something to do. `root` is `/` in production; tests pass a temporary directory.
pub fn install(root: &Path, opts: &Options) -> Result<Outcome> {
    let root_fd = open_dir(root)?;
    let dir_fd = match open_at(
        root_fd.as_raw_fd(),
        layout::DIR.as_bytes(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Outcome::AlreadyInstalled),
        Err(e) => return Err(e).with_context(|| format!("opening /{}", layout::DIR)),
    };
    // Two first launches at once (two terminals) must not extract concurrently; the second
    // waits here and then finds the work done.
    let dir_lock = Flock::lock(dir_fd, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking /{}", layout::DIR))?;
    let dir = dir_lock.as_raw_fd();
    let mut hook = Hook {
        steps: 0,
        stop_after: opts.stop_after,
        kill: opts.kill_at_stop,
    };

    let state = decide_state(
        true,
        exists(dir, layout::MANIFEST)?,
        exists(dir, layout::MARKER)?,
        exists(dir, layout::JOURNAL)?,
    );
    log::debug!("installer state: {state:?}");
    let mut stats = None;
    match state {
        State::Fresh | State::Resume => {
            if state == State::Resume {
                log::info!("resuming an interrupted installation");
            }
            let manifest_text = read_small(dir, layout::MANIFEST)?;
            let manifest =
                Manifest::parse(&String::from_utf8_lossy(&manifest_text)).map_err(|e| {
                    anyhow!(Damaged(format!(
                        "/{}/{}: {e}",
                        layout::DIR,
                        layout::MANIFEST
                    )))
                })?;
            let tarball = verify_embedded(dir, &manifest)?;
            // From here on files change; the marker says so.
            write_durably(
                dir,
                layout::MARKER,
                b"extraction of the root filesystem in progress\n",
            )?;
            stats = Some(extract_and_seal(
                &root_fd, dir, tarball, &manifest, opts, &mut hook,
            )?);
            commit(&root_fd, dir, &mut hook)?;
        }
        State::Commit => {
            log::info!("completing an interrupted installation");
            commit(&root_fd, dir, &mut hook)?;
            stats = Some(Stats::default());
        }
        State::Installed => {}
    }
    // Clean up: everything of the installer, including the binary that is running now (the
    // kernel keeps the unlinked inode until we exec).
    let leftover = exists(dir, layout::BINARY)? || exists(dir, layout::JOURNAL)?;
    if stats.is_some() || leftover {
        extract::remove_tree(root_fd.as_raw_fd(), layout::DIR.as_bytes())
            .with_context(|| format!("removing /{}", layout::DIR))?;
        fsync(root_fd.as_raw_fd()).context("syncing the root directory")?;
    }
    drop(dir_lock);
    Ok(match stats {
        Some(s) => Outcome::Installed(s),
        None => Outcome::AlreadyInstalled,
    })
}

/// Phases 2 and 3: extract, then seal (journal written, installer payload removed).
fn extract_and_seal(
    root_fd: &OwnedFd,
    dir: RawFd,
    tarball: File,
    manifest: &Manifest,
    opts: &Options,
    hook: &mut Hook,
) -> Result<Stats> {
    let mut progress = progress::Progress::new(opts.progress, manifest.unpacked);
    let stream =
        decompress::open_threaded(tarball).context("opening the embedded root filesystem")?;
    let mut reader = Reader::new(stream);
    let mut extractor = Extractor::for_installer(
        root_fd
            .try_clone()
            .context("duplicating the root descriptor")?,
        opts.owners,
    )?;
    let result = extractor.extract_all(
        &mut reader,
        &mut |offset| progress.update(offset),
        &mut |_| hook.tick(),
    );
    if let Err(e) = result {
        progress.abandon();
        return Err(
            e.context("the installation is incomplete; start the distribution again to resume it")
        );
    }
    let stats = extractor.stats();
    let renames = extractor.finish()?;
    hook.check()?;
    syncfs(root_fd.as_raw_fd()).context("syncing the root filesystem")?;
    progress.finish(reader.offset(), stats.entries);
    let journal = layout::render_journal(&renames)
        .ok_or_else(|| anyhow!("unrepresentable path in the commit"))?;
    write_durably(dir, layout::JOURNAL, &journal)?;
    hook.check()?;
    for name in [layout::ROOTFS, layout::MANIFEST, layout::MARKER] {
        remove(dir, name)?;
    }
    fsync(dir).context("syncing the installer directory")?;
    hook.check()?;
    Ok(stats)
}

/// Phase 4: the journal's renames, durably.
fn commit(root_fd: &OwnedFd, dir: RawFd, hook: &mut Hook) -> Result<()> {
    let journal = read_small(dir, layout::JOURNAL)?;
    let renames = layout::parse_journal(&journal)
        .map_err(|e| anyhow!("/{}/{}: {e}", layout::DIR, layout::JOURNAL))?;
    extract::apply_renames(root_fd.as_raw_fd(), &renames, &mut || hook.tick())?;
    syncfs(root_fd.as_raw_fd()).context("syncing the root filesystem")?;
    hook.check()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(decide_state(false, false, false, false), State::Installed);
        assert_eq!(decide_state(true, true, false, false), State::Fresh);
        assert_eq!(decide_state(true, true, true, false), State::Resume);
        // A journal next to a manifest is stale (extraction restarted): extract again.
        assert_eq!(decide_state(true, true, true, true), State::Resume);
        assert_eq!(decide_state(true, false, false, true), State::Commit);
        assert_eq!(decide_state(true, false, true, true), State::Commit);
        assert_eq!(decide_state(true, false, false, false), State::Installed);
    }
}
