//! Files under `/run/nixos-wsl/`, the per-boot state: created, opened and replaced without
//! ever following a link planted there, blocking on a FIFO, or giving up the boot's systemd
//! because an entry has the wrong type. Anything unexpected is moved aside (renaming never
//! follows links and never deletes what someone left), with one warning.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// What an entry of the state directory must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file (also what a bind-mounted namespace file looks like).
    File,
    /// A unix socket.
    Socket,
    /// A directory.
    Dir,
}

impl Kind {
    fn matches(self, meta: &std::fs::Metadata) -> bool {
        let t = meta.file_type();
        match self {
            Kind::File => t.is_file(),
            Kind::Socket => t.is_socket(),
            Kind::Dir => t.is_dir(),
        }
    }
}

/// Makes sure `path` is absent or of `kind`; anything else (a symlink included) is moved
/// aside. Returns whether something was moved.
pub(crate) fn expect_kind(path: &Path, kind: Kind) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if kind.matches(&meta) => Ok(false),
        Ok(_) => move_aside(path).map(|()| true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
}

/// Renames `path` to `<path>.stale.<pid>` and says so.
pub(crate) fn move_aside(path: &Path) -> Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".stale.{}", std::process::id()));
    std::fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
    log::warn!(
        "{} was not what it should be; moved it to {}",
        path.display(),
        Path::new(&aside).display()
    );
    Ok(())
}

/// Replaces `path` with `contents` atomically: a fresh temporary file (`O_EXCL`, so a planted
/// link is never written through), then a rename over the target.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    match std::fs::remove_file(tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            expect_kind(tmp, Kind::File)?;
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", tmp.display()))?;
    expect_kind(path, Kind::File)?;
    std::fs::rename(tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Opens a log for appending. Only a regular file will do: a FIFO would block the launch (and
/// everyone waiting for its lock), a link could point anywhere.
pub(crate) fn open_log(path: &Path) -> Result<File> {
    expect_kind(path, Kind::File)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // Between the check and the open another type could have appeared: check the result.
    if !file.metadata()?.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    Ok(file)
}

/// Opens (creating) the lock file: a regular file owned by root. One left by someone else
/// (when the state directory was ever writable) is moved aside, so no user can stall launches
/// by holding it.
pub(crate) fn open_lock(path: &Path) -> Result<File> {
    expect_kind(path, Kind::File)?;
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))
    };
    let file = open()?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.uid() == nix::unistd::geteuid().as_raw() {
        return Ok(file);
    }
    drop(file);
    move_aside(path)?;
    open()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nixos-wsl-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_atomic_never_writes_through_a_planted_link() {
        let dir = tmpdir("atomic");
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("ready.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("ready")).unwrap();
        write_atomic(&dir.join("ready"), b"ready 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(dir.join("ready")).unwrap(),
            "ready 1\n"
        );
        assert!(!std::fs::symlink_metadata(dir.join("ready"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrong_kinds_are_moved_aside_not_deleted() {
        let dir = tmpdir("kinds");
        std::fs::create_dir(dir.join("log")).unwrap();
        std::fs::write(dir.join("log").join("keep"), "x").unwrap();
        let log = open_log(&dir.join("log")).unwrap();
        assert!(log.metadata().unwrap().is_file());
        let aside = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("log.stale."))
            .expect("moved aside");
        assert!(aside.path().join("keep").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_log_does_not_block() {
        let dir = tmpdir("fifo");
        nix::unistd::mkfifo(
            &dir.join("log"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let log = open_log(&dir.join("log")).unwrap();
        assert!(log.metadata().unwrap().is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
