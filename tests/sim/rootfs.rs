//! The cached Debian rootfs every simulated distro uses as its read-only lower layer.
//!
//! Built once by tests/rootfs/build.sh (mmdebstrap) into
//! `${NIXOS_WSL_SIM_CACHE:-<crate>/target/wsl-sim}/rootfs-<hash of tests/rootfs/>`. Test
//! threads and concurrent test processes serialise on a `flock` of `build.lock`, so the
//! rootfs is built once and nobody sees a half-built tree (it is renamed into place).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::safety::MARKER;

/// A built rootfs.
#[derive(Clone, Debug)]
pub struct Rootfs {
    /// The tree (overlayfs lower dir).
    pub dir: PathBuf,
    /// The cache directory it lives in; instances' state goes under `<cache>/state`.
    pub cache: PathBuf,
}

/// `${NIXOS_WSL_SIM_CACHE:-<crate>/target/wsl-sim}`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("NIXOS_WSL_SIM_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wsl-sim"),
    }
}

/// The recipe directory, tests/rootfs/.
pub fn recipe_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rootfs")
}

/// FNV-1a 64: stable across Rust versions, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Hash of every file under `dir`: relative path, executable bit and contents, in sorted
/// order, so any edit of the recipe gives a new cache key.
pub fn recipe_hash(dir: &Path) -> Result<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else {
                out.push(path.strip_prefix(base)?.to_path_buf());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut h = Fnv::new();
    for rel in files {
        let path = dir.join(&rel);
        let meta = fs::symlink_metadata(&path)?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update(&[0, (meta.permissions().mode() & 0o111 != 0) as u8]);
        if meta.file_type().is_symlink() {
            h.update(fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else {
            h.update(&fs::read(&path)?);
        }
        h.update(&[0]);
    }
    Ok(format!("{:016x}", h.0))
}

/// The rootfs for the current recipe, built on first use (once per process; other processes
/// wait on the cache lock).
pub fn ensure() -> Result<Rootfs> {
    static BUILT: OnceLock<std::result::Result<Rootfs, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_if_missing(&cache_dir()).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn build_if_missing(cache: &Path) -> Result<Rootfs> {
    let key = recipe_hash(&recipe_dir())?;
    let dir = cache.join(format!("rootfs-{key}"));
    let done = |dir: &Path| dir.join(MARKER.trim_start_matches('/')).is_file();
    let rootfs = Rootfs {
        dir: dir.clone(),
        cache: cache.to_path_buf(),
    };
    if done(&dir) {
        return Ok(rootfs);
    }
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock = File::create(cache.join("build.lock"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("locking the rootfs cache")?;
    if done(&dir) {
        return Ok(rootfs); // another thread or process built it while we waited
    }
    if Command::new("mmdebstrap")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        bail!("mmdebstrap is not installed; install it with: apt-get install -y mmdebstrap");
    }
    let tmp = cache.join(format!("rootfs-{key}.tmp"));
    let log_path = cache.join(format!("rootfs-{key}.log"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let log = File::create(&log_path)?;
    let started = Instant::now();
    let _ = writeln!(
        std::io::stderr(),
        "wsl-sim: building the Debian rootfs with mmdebstrap (once per recipe change; log: {})",
        log_path.display()
    );
    let status = Command::new("sh")
        .arg(recipe_dir().join("build.sh"))
        .arg(&tmp)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running tests/rootfs/build.sh")?;
    if !status.success() || !done(&tmp) {
        let tail = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        bail!(
            "building the rootfs failed ({status}); last lines of {}:\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    fs::rename(&tmp, &dir)?;
    let _ = writeln!(
        std::io::stderr(),
        "wsl-sim: rootfs built in {:.0?} at {}",
        started.elapsed(),
        dir.display()
    );
    // Older recipes' trees are dead weight (a few hundred MB each).
    for entry in fs::read_dir(cache)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("rootfs-") && entry.path() != dir && entry.path().is_dir() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(rootfs)
}
