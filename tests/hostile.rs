//! Hostile tarballs: the reader, `tarball verify` and the extractor under crafted and mutated
//! input (issue 16). Two parts:
//!
//! - regression tests, one per defect class the issue found, each shown failing on the code
//!   before the fix (the numbers are in the commit message);
//! - a seeded, deterministic fuzz harness ([`fuzz_tarballs`]) that generates and mutates
//!   tarballs and checks every input for no panic, no abort, no timeout, bounded memory, nothing
//!   written outside the extraction target, and (where `bsdtar` is installed) the same entry
//!   list and verdict as WSL's importer on the well-formed part of the corpus.
//!
//! Whatever could crash or exhaust memory runs in a child: this test binary re-executed for one
//! test (`HOSTILE_CHILD` set), under `RLIMIT_AS` and a wall-clock deadline, so a stack overflow
//! or an abort is reported as a failure instead of taking the whole run down.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nixos_wsl::installer::extract::{self, open_dir, Extractor, Owners};
use nixos_wsl::installer::plan::Planner;
use nixos_wsl::tar::header::{Entry, Kind, BLOCK};
use nixos_wsl::tar::reader::Reader;
use nixos_wsl::tar::writer::{self, Writer};
use nixos_wsl::tarball::index::Index;

const CLI: &str = env!("CARGO_BIN_EXE_nixos-wsl");

/// Address-space limit of every child: the stated memory bound of `verify` and the extractor
/// on these inputs (the test binary itself, its threads' stacks and allocator arenas included).
const CHILD_AS: u64 = 512 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "nixos-wsl-hostile-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Deep trees defeat remove_dir_all's recursion on some platforms; use ours.
        if let Ok(parent) = open_dir(self.0.parent().unwrap()) {
            let name = self.0.file_name().unwrap().to_os_string();
            let _ = extract::remove_tree(
                parent.as_raw_fd(),
                std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()),
            );
        }
    }
}

/// Whether this process is a child started by [`in_child`].
fn child_mode() -> bool {
    std::env::var_os("HOSTILE_CHILD").is_some()
}

struct ChildOutcome {
    /// Exit code, or `None` if killed by a signal or the deadline.
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    elapsed: Duration,
    stderr: String,
}

impl ChildOutcome {
    fn describe(&self) -> String {
        format!(
            "code {:?}, signal {:?}, timed out {}, {:.1}s; stderr:\n{}",
            self.code,
            self.signal,
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.stderr
        )
    }
}

/// Runs `cmd` with `RLIMIT_AS` = `limit` bytes and a deadline.
fn run_limited(mut cmd: Command, limit: u64, deadline: Duration) -> ChildOutcome {
    // SAFETY: setrlimit is async-signal-safe; the closure touches no locks or allocations.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A crash should not leave a core file per fuzz input.
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawning a child");
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let mut stderr = err_reader.join().unwrap_or_default();
    stderr.push_str(&out_reader.join().unwrap_or_default());
    ChildOutcome {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        elapsed,
        stderr,
    }
}

/// Re-executes this test binary for test `name` alone, in child mode.
fn in_child(name: &str, limit: u64, deadline: Duration) -> ChildOutcome {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("HOSTILE_CHILD", "1");
    run_limited(cmd, limit, deadline)
}

/// A header block for `entry` (which must fit ustar), then patched by `edit` with the
/// checksum fixed up afterwards.
fn block(entry: &Entry, edit: impl FnOnce(&mut [u8; BLOCK])) -> [u8; BLOCK] {
    let bytes = writer::encode(entry).unwrap();
    assert_eq!(bytes.len(), BLOCK, "entry must fit a single ustar block");
    let mut b = [0u8; BLOCK];
    b.copy_from_slice(&bytes);
    edit(&mut b);
    fix_checksum(&mut b);
    b
}

fn fix_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let text = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(text.as_bytes());
}

fn file(path: &str, size: u64) -> Entry {
    let mut e = Entry::new(Kind::Regular, path.as_bytes().to_vec());
    e.mode = 0o644;
    e.size = size;
    e
}

fn dir(path: &str) -> Entry {
    let mut e = Entry::new(Kind::Directory, path.as_bytes().to_vec());
    e.mode = 0o755;
    e
}

/// A PAX extended header ('x' or 'g') carrying `records`, ready to precede a header: the
/// `tar` crate's, with the type flag set to `flag`.
fn pax(flag: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions(records.iter().copied()).unwrap();
    let mut out = b.into_inner().unwrap();
    out.truncate(out.len() - 2 * BLOCK); // the end-of-archive marker
    let head: &mut [u8; BLOCK] = (&mut out[..BLOCK]).try_into().unwrap();
    head[156] = flag;
    fix_checksum(head);
    out
}

/// A GNU long-name ('L') or long-link ('K') block for `name`.
fn gnu_long(flag: u8, name: &[u8]) -> Vec<u8> {
    let mut head = file("././@LongLink", name.len() as u64 + 1);
    head.kind = Kind::Other(flag);
    let mut out = block(&head, |b| {
        b[257..265].copy_from_slice(b"ustar  \0");
    })
    .to_vec();
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn end(mut v: Vec<u8>) -> Vec<u8> {
    v.extend_from_slice(&[0u8; 2 * BLOCK]);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Paths of the entries our reader returns, or the error that stopped it.
fn our_list(tar: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader::new(tar);
    let mut out = Vec::new();
    loop {
        match r.next_entry() {
            Ok(Some(e)) => out.push(String::from_utf8_lossy(&e.path).into_owned()),
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn bsdtar() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            Command::new("bsdtar")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .then_some("bsdtar")
}

/// What bsdtar (WSL's importer) lists, or its error.
fn bsdtar_list(tar: &[u8]) -> Option<Result<Vec<String>, String>> {
    let bin = bsdtar()?;
    let mut child = Command::new(bin)
        .args(["-tf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take().unwrap();
    let data = tar.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().ok()?;
    let _ = feeder.join();
    let list = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    Some(if out.status.success() {
        Ok(list)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

fn write_tmp(dir: &TempDir, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.0.join(name);
    fs::write(&p, data).unwrap();
    p
}

/// `nixos-wsl tarball verify FILE` under the child limits.
fn verify_cli(path: &Path, deadline: Duration) -> ChildOutcome {
    let mut cmd = Command::new(CLI);
    cmd.args(["tarball", "verify"]).arg(path);
    run_limited(cmd, CHILD_AS, deadline)
}

/// The CLI ran to a verdict: exit 0 (accepted) or 1 (findings or refusal), nothing worse, and a
/// refusal fits on one line.
fn assert_verdict(o: &ChildOutcome, what: &str) {
    assert!(
        !o.timed_out && matches!(o.code, Some(0) | Some(1)),
        "{what}: {}",
        o.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Regression tests, one per defect class of issue 16.

/// Extractor: removing a directory tree recursed once per level; a tree ~12,000 deep (left on
/// disk, or built by the archive) overflowed the stack (SIGSEGV) and stayed behind.
#[test]
fn deep_tree_is_removed_without_recursion() {
    if child_mode() {
        let t = TempDir::new("deep");
        let root = open_dir(&t.0).unwrap();
        let mut fd = root.try_clone().unwrap();
        nix::sys::stat::mkdirat(Some(fd.as_raw_fd()), "d", nix::sys::stat::Mode::S_IRWXU).unwrap();
        fd = extract::open_at(
            fd.as_raw_fd(),
            b"d",
            nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        for _ in 0..50_000 {
            nix::sys::stat::mkdirat(Some(fd.as_raw_fd()), "a", nix::sys::stat::Mode::S_IRWXU)
                .unwrap();
            fd = extract::open_at(
                fd.as_raw_fd(),
                b"a",
                nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
        }
        fs::write(t.0.join("x"), b"").unwrap();
        drop(fd);
        extract::remove_tree(root.as_raw_fd(), b"d").unwrap();
        assert!(!t.0.join("d").exists(), "the deep tree stayed behind");
        return;
    }
    let o = in_child(
        "deep_tree_is_removed_without_recursion",
        CHILD_AS,
        Duration::from_secs(120),
    );
    assert_eq!(o.code, Some(0), "{}", o.describe());
}

/// Extractor: a directory tree the archive builds, replaced by a file later in the archive.
/// The replacement succeeds and nothing of the old tree is left.
#[test]
fn archive_tree_replaced_by_a_file() {
    let t = TempDir::new("replace");
    let target = t.0.join("target");
    fs::create_dir(&target).unwrap();
    let mut w = Writer::new(Vec::new());
    let deep = format!("./d/{}", "a/".repeat(1000));
    w.append_meta(&dir(&deep)).unwrap();
    w.append(&file(&format!("{deep}f"), 1), &mut &b"x"[..])
        .unwrap();
    w.append(&file("./d", 2), &mut &b"hi"[..]).unwrap();
    let tar = w.finish().unwrap();
    let mut x = Extractor::new(open_dir(&target).unwrap(), Owners::Mine).unwrap();
    x.extract_all(&mut Reader::new(&tar[..]), &mut |_| {}, &mut |_| true)
        .unwrap();
    x.finish().unwrap();
    assert_eq!(fs::read(target.join("d")).unwrap(), b"hi");
    assert_eq!(fs::read_dir(&target).unwrap().count(), 1);
}

/// Planner: one symlink and one very deep path cost time quadratic in the depth (18 s at
/// 250,000 levels). Now linear, and refused at the path limit with one line.
#[test]
fn planner_is_linear_in_path_depth() {
    let mut p = Planner::new();
    let mut link = Entry::new(Kind::Symlink, b"./s".to_vec());
    link.link = b"/".to_vec();
    p.plan(&link).unwrap();
    let start = Instant::now();
    let deep = format!("./{}s/x", "a/".repeat(100_000));
    let err = p.plan(&file(&deep, 0)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(!err.to_string().contains('\n'), "{err}");
    // Within the limits: deep, but linear (the hash of every ancestor is not recomputed).
    let start = Instant::now();
    for i in 0..2000 {
        let path = format!("./t{i}/{}f", "b/".repeat(1000));
        p.plan(&file(&path, 0)).unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// verify: memory was quadratic in path length (a 64 KiB nested path took about 1 GB; a
/// 1 MB one aborted). A long path is refused in one line; deep paths within the limit cost
/// memory linear in their length.
#[test]
fn verify_memory_is_linear_in_path_length() {
    let t = TempDir::new("longpath");
    // 64 KiB of nesting in one PAX path, the 368-byte tarball.
    let long = format!("./{}f", "a/".repeat(32 * 1024));
    let mut tar = pax(b'x', &[("path", long.as_bytes())]);
    tar.extend_from_slice(&block(&file("./f", 0), |_| {}));
    let p = write_tmp(&t, "long.tar.gz", &gzip(&end(tar)));
    let o = verify_cli(&p, Duration::from_secs(60));
    assert_verdict(&o, "64 KiB path");
    assert!(o.stderr.contains("limit"), "{}", o.describe());

    // The same through a GNU long name of 1 MB.
    let mut tar = gnu_long(b'L', format!("./{}f", "a/".repeat(512 * 1024)).as_bytes());
    tar.extend_from_slice(&block(&file("./f", 0), |_| {}));
    let p = write_tmp(&t, "gnu.tar.gz", &gzip(&end(tar)));
    let o = verify_cli(&p, Duration::from_secs(60));
    assert_verdict(&o, "1 MB GNU long name");

    // 300 paths of ~4,000 bytes (2,000 levels) each, all distinct: 600,000 directories that
    // the old index stored as 600,000 full-path keys (1.2 GB).
    let mut tar = Vec::new();
    for i in 0..300 {
        let path = format!("./{i}/{}f", "a/".repeat(1990));
        tar.extend_from_slice(&pax(b'x', &[("path", path.as_bytes())]));
        tar.extend_from_slice(&block(&file("./f", 0), |_| {}));
    }
    let p = write_tmp(&t, "many.tar.gz", &gzip(&end(tar)));
    let o = verify_cli(&p, Duration::from_secs(120));
    assert_verdict(&o, "300 deep paths");
    assert!(
        !o.stderr.contains("limit"),
        "within the limits: {}",
        o.describe()
    );
}

/// verify: memory was ~1,000x the compressed metadata (700 one-megabyte PAX paths took
/// 690 MB). PAX records that are not applied (xattrs and the like) are bounded as well.
#[test]
fn verify_memory_is_bounded_by_metadata_limits() {
    let t = TempDir::new("meta");
    // Streamed to the file: the uncompressed archives are 700 MB and 400 MB.
    let write = |name: &str, n: usize, one: &dyn Fn(usize) -> Vec<u8>| {
        let p = t.0.join(name);
        let mut enc = flate2::write::GzEncoder::new(
            fs::File::create(&p).unwrap(),
            flate2::Compression::fast(),
        );
        for i in 0..n {
            enc.write_all(&one(i)).unwrap();
        }
        enc.write_all(&[0u8; 2 * BLOCK]).unwrap();
        enc.finish().unwrap();
        p
    };
    // Just under the old 1 MiB cap on extended headers.
    let big = (1 << 20) - 200;
    let p = write("pax.tar.gz", 700, &|i| {
        let path = format!("./{i:03}-{}", "p".repeat(big));
        let mut v = pax(b'x', &[("path", path.as_bytes())]);
        v.extend_from_slice(&block(&file("./f", 0), |_| {}));
        v
    });
    let o = verify_cli(&p, Duration::from_secs(120));
    assert_verdict(&o, "700 one-megabyte PAX paths");

    let p = write("xattr.tar.gz", 400, &|i| {
        let key = format!("SCHILY.xattr.user.{i:03}{}", "k".repeat(big));
        let mut v = pax(b'x', &[(&key, b"v")]);
        v.extend_from_slice(&block(&file(&format!("./f{i}"), 0), |_| {}));
        v
    });
    let o = verify_cli(&p, Duration::from_secs(120));
    assert_verdict(&o, "400 one-megabyte xattr names");
}

/// A size of 2^64-1 (base-256 or PAX) wrapped around in the skip arithmetic: verify accepted
/// what GNU tar and bsdtar reject.
#[test]
fn size_overflow_is_rejected() {
    let mut plain = block(&file("./a", 0), |b| {
        b[124] = 0x80;
        b[125..136].fill(0xff);
    })
    .to_vec();
    plain.extend_from_slice(&block(&file("./b", 0), |_| {}));
    let plain = end(plain);
    assert!(our_list(&plain).is_err(), "{:?}", our_list(&plain));

    let mut via_pax = pax(b'x', &[("size", b"18446744073709551615")]);
    via_pax.extend_from_slice(&block(&file("./a", 0), |_| {}));
    via_pax.extend_from_slice(&block(&file("./b", 0), |_| {}));
    let via_pax = end(via_pax);
    assert!(our_list(&via_pax).is_err(), "{:?}", our_list(&via_pax));

    // Just below the wrap: huge but representable; truncated, not accepted.
    let mut big = pax(b'x', &[("size", b"18446744073709551104")]);
    big.extend_from_slice(&block(&file("./a", 0), |_| {}));
    assert!(our_list(&end(big)).is_err());

    if let Some(theirs) = bsdtar_list(&plain) {
        assert!(theirs.is_err(), "bsdtar: {theirs:?}");
    }
}

/// GNU base-256 negative mtime (before 1970), as GNU tar writes it: bsdtar reads it; we said
/// "malformed number".
#[test]
fn negative_base256_mtime_is_read() {
    let mut tar = block(&file("./old", 0), |b| {
        // -1 in 12 bytes of two's complement with the base-256 marker.
        b[136..148].fill(0xff);
    })
    .to_vec();
    let mut e = file("./older", 0);
    e.mtime = 0;
    tar.extend_from_slice(&block(&e, |b| {
        // -86400 * 365 (one year before the epoch).
        let v: i64 = -86400 * 365;
        let bytes = v.to_be_bytes();
        b[136..140].fill(0xff);
        b[140..148].copy_from_slice(&bytes);
    }));
    let tar = end(tar);
    let mut r = Reader::new(&tar[..]);
    assert_eq!(r.next_entry().unwrap().unwrap().mtime, -1);
    assert_eq!(r.next_entry().unwrap().unwrap().mtime, -86400 * 365);
    assert_eq!(r.next_entry().unwrap(), None);
    if let Some(theirs) = bsdtar_list(&tar) {
        assert_eq!(theirs.unwrap(), vec!["./old", "./older"]);
    }
}

/// A hard link with a size field in a plain ustar archive: libarchive ignores the size when a
/// valid header follows (and always in GNU and v7 archives); we skipped `size` bytes and
/// swallowed the next entry.
#[test]
fn hard_link_size_follows_libarchive() {
    let mut hl = Entry::new(Kind::HardLink, b"./b".to_vec());
    hl.link = b"./a".to_vec();
    hl.size = 512;
    let mut tar = block(&file("./a", 0), |_| {}).to_vec();
    tar.extend_from_slice(&block(&hl, |_| {}));
    tar.extend_from_slice(&block(&file("./c", 0), |_| {}));
    let tar = end(tar);
    let want = vec!["./a", "./b", "./c"];
    assert_eq!(our_list(&tar).unwrap(), want);
    if let Some(theirs) = bsdtar_list(&tar) {
        assert_eq!(theirs.unwrap(), want, "bsdtar");
    }

    // In a pax interchange archive (an 'x' header seen earlier) the size is honoured: the
    // link carries data, and the block after it is that data, not a header.
    let mut tar = pax(b'x', &[("mtime", b"1")]);
    tar.extend_from_slice(&block(&file("./a", 0), |_| {}));
    tar.extend_from_slice(&block(&hl, |_| {}));
    tar.extend_from_slice(&block(&file("./data-not-an-entry", 0), |_| {}));
    tar.extend_from_slice(&block(&file("./c", 0), |_| {}));
    let tar = end(tar);
    let want = vec!["./a", "./b", "./c"];
    assert_eq!(our_list(&tar).unwrap(), want);
    if let Some(theirs) = bsdtar_list(&tar) {
        assert_eq!(theirs.unwrap(), want, "bsdtar");
    }
}

/// A global PAX header ('g') with `size`: libarchive skips global headers' records entirely;
/// we applied `size` to every later entry and lost sync.
#[test]
fn global_pax_size_is_ignored_like_libarchive() {
    let mut tar = pax(b'g', &[("size", b"1024")]);
    tar.extend_from_slice(&block(&file("./a", 0), |_| {}));
    tar.extend_from_slice(&block(&file("./b", 0), |_| {}));
    tar.extend_from_slice(&block(&file("./c", 0), |_| {}));
    let tar = end(tar);
    let want = vec!["./a", "./b", "./c"];
    assert_eq!(our_list(&tar).unwrap(), want);
    if let Some(theirs) = bsdtar_list(&tar) {
        assert_eq!(theirs.unwrap(), want, "bsdtar");
    }
}

/// The installer's extractor under the same inputs: one clear line, no crash.
#[test]
fn extractor_refuses_hostile_paths_in_one_line() {
    let t = TempDir::new("xlong");
    let target = t.0.join("target");
    fs::create_dir(&target).unwrap();
    let long = format!("./{}f", "a/".repeat(32 * 1024));
    let mut tar = pax(b'x', &[("path", long.as_bytes())]);
    tar.extend_from_slice(&block(&file("./f", 0), |_| {}));
    let tar = end(tar);
    let mut x = Extractor::for_installer(open_dir(&target).unwrap(), Owners::Mine).unwrap();
    let err = x
        .extract_all(&mut Reader::new(&tar[..]), &mut |_| {}, &mut |_| true)
        .unwrap_err();
    let line = format!("{err:#}");
    assert!(!line.contains('\n') && line.contains("limit"), "{line}");
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "nothing written");
}

/// Index API kept for verify: a scan of a small well-formed archive still resolves.
#[test]
fn index_still_resolves() {
    let t = TempDir::new("index");
    let mut w = Writer::new(Vec::new());
    w.append_meta(&dir("./usr/")).unwrap();
    w.append_meta(&dir("./usr/bin/")).unwrap();
    w.append(&file("./usr/bin/dash", 4), &mut &b"\x7fELF"[..])
        .unwrap();
    let mut s = Entry::new(Kind::Symlink, b"./bin".to_vec());
    s.link = b"usr/bin".to_vec();
    w.append_meta(&s).unwrap();
    let tar = w.finish().unwrap();
    let p = write_tmp(&t, "ok.tar", &tar);
    let index = Index::scan(&p, &|_| true, &mut |_| Ok(())).unwrap();
    let (real, e) = index.resolve(b"/bin/dash").unwrap();
    assert_eq!(real, b"usr/bin/dash");
    assert_eq!(e.kind, Kind::Regular);
    assert_eq!(index.contents.get(&real[..]).unwrap(), b"\x7fELF");
}

// ---------------------------------------------------------------------------------------------
// The fuzz harness.

/// Inputs per run (`NIXOS_WSL_FUZZ_TAR_INPUTS`, default 100,000) and the seed
/// (`NIXOS_WSL_FUZZ_TAR_SEED`, default fixed so CI runs are reproducible).
fn fuzz_params() -> (u64, u64) {
    let get = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (
        get("NIXOS_WSL_FUZZ_TAR_INPUTS", 100_000),
        get("NIXOS_WSL_FUZZ_TAR_SEED", 0x5eed_0016),
    )
}

/// Seconds one input may take before the worker reports a timeout.
const INPUT_DEADLINE: u64 = 20;

/// splitmix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, input: u64) -> Rng {
        Rng(seed ^ input.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One generated input: the bytes, whether it is well-formed (no mutation; comparable with
/// bsdtar), and the offsets of its header blocks in the uncompressed tar.
struct Input {
    bytes: Vec<u8>,
    well_formed: bool,
}

const WORDS: &[&str] = &["a", "b", "etc", "bin", "usr", "x.conf", "d", ".", "..", "n"];

fn gen_path(rng: &mut Rng, allow_dotdot: bool) -> String {
    let mut parts = Vec::new();
    let depth = 1 + rng.below(4);
    for _ in 0..depth {
        let w = *rng.pick(WORDS);
        if w == ".." && !allow_dotdot {
            parts.push("p");
        } else {
            parts.push(w);
        }
    }
    let mut p = parts.join("/");
    if rng.chance(6) {
        // Longer than the ustar fields: PAX or GNU long names.
        p.push('/');
        p.push_str(&"L".repeat(100 + rng.below(200) as usize));
    }
    if rng.chance(300) {
        // Deep, sometimes beyond MAX_PATH.
        p = format!("{}{p}", "q/".repeat(1900 + rng.below(300) as usize));
    }
    match rng.below(3) {
        0 => format!("./{p}"),
        1 => format!("/{p}"),
        _ => p,
    }
}

/// Generates input `i` of the run seeded `seed`: a structured archive, then (7 times in 8)
/// mutated in its headers, structure or gzip layer.
fn gen_input(seed: u64, i: u64) -> Input {
    let mut rng = Rng::new(seed, i);
    let mut tar: Vec<u8> = Vec::new();
    let mut headers: Vec<usize> = Vec::new();
    let mut comparable = true;
    let gnu = rng.chance(5);
    let n = 1 + rng.below(8);
    let mut files: Vec<String> = Vec::new();
    for _ in 0..n {
        let dotdot = rng.chance(8);
        let path = gen_path(&mut rng, dotdot);
        if path.len() > 4096 {
            comparable = false; // we refuse beyond MAX_PATH; bsdtar does not
        }
        let kind = *rng.pick(&[
            Kind::Regular,
            Kind::Regular,
            Kind::Directory,
            Kind::Symlink,
            Kind::HardLink,
            Kind::Fifo,
        ]);
        let mut e = Entry::new(kind, path.clone().into_bytes());
        e.mode = *rng.pick(&[0o644, 0o755, 0o4755, 0o700]);
        e.mtime = rng.below(2_000_000_000) as i64;
        match kind {
            Kind::Regular => e.size = *rng.pick(&[0, 1, 511, 512, 513, 1500]),
            Kind::Symlink => {
                e.link = rng
                    .pick(&["/", "a", "../../etc", "b/c", "/etc/passwd", "self"])
                    .as_bytes()
                    .to_vec()
            }
            Kind::HardLink => {
                e.link = match files.last() {
                    Some(f) => f.clone().into_bytes(),
                    None => b"./a".to_vec(),
                }
            }
            _ => {}
        }
        if kind == Kind::Regular {
            files.push(path.clone());
        }
        if rng.chance(10) {
            tar.extend_from_slice(&pax(b'g', &[("comment", b"fuzz")]));
        }
        if gnu && path.len() > 100 {
            headers.push(tar.len());
            tar.extend_from_slice(&gnu_long(b'L', path.as_bytes()));
            let mut short = e.clone();
            short.path = path.as_bytes()[..100].to_vec();
            headers.push(tar.len());
            tar.extend_from_slice(&writer::encode(&short).unwrap()[..]);
        } else {
            let enc = writer::encode(&e).unwrap();
            // The header block is the last of the encoding (after a PAX header, if any).
            if enc.len() > BLOCK {
                headers.push(tar.len());
            }
            headers.push(tar.len() + enc.len() - BLOCK);
            tar.extend_from_slice(&enc);
        }
        if kind == Kind::Regular {
            let byte = (rng.below(256)) as u8;
            tar.resize(tar.len() + e.size as usize, byte);
            tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
        }
    }
    tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    let mutate = !rng.chance(8);
    if mutate {
        for _ in 0..1 + rng.below(3) {
            mutate_tar(&mut rng, &mut tar, &headers);
        }
    }
    let mut bytes = tar;
    let zipped = rng.chance(4);
    if zipped {
        bytes = gzip(&bytes);
        if mutate && rng.chance(3) {
            match rng.below(3) {
                0 => {
                    let at = rng.below(bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let keep = rng.below(bytes.len() as u64) as usize;
                    bytes.truncate(keep);
                }
                _ => {
                    let again = bytes.clone();
                    bytes.extend_from_slice(&again); // two members
                }
            }
        }
    }
    Input {
        bytes,
        well_formed: !mutate && comparable,
    }
}

/// One mutation: a header field (checksum fixed up), a byte, or the structure.
fn mutate_tar(rng: &mut Rng, tar: &mut Vec<u8>, headers: &[usize]) {
    let fields: &[(usize, usize)] = &[
        (100, 8),
        (108, 8),
        (116, 8),
        (124, 12),
        (136, 12),
        (156, 1),
        (157, 100),
        (0, 100),
        (257, 8),
        (329, 8),
        (345, 155),
    ];
    let at = if headers.is_empty() {
        0
    } else {
        *rng.pick(headers)
    };
    match rng.below(8) {
        0..=3 if at + BLOCK <= tar.len() => {
            let (off, len) = *rng.pick(fields);
            let field = &mut tar[at + off..at + off + len];
            match rng.below(8) {
                0 => field.fill(0xff),
                1 => {
                    field.fill(0);
                    field[0] = 0x80;
                    let n = field.len();
                    for b in &mut field[n.saturating_sub(8)..] {
                        *b = 0xff;
                    }
                }
                2 => field.fill(b'7'),
                3 => {
                    let flag = *rng.pick(b"0123456789xgLKSVADMN\0");
                    field[0] = flag;
                }
                4 => {
                    for b in field.iter_mut() {
                        *b = rng.below(256) as u8;
                    }
                }
                5 => field.fill(0),
                6 => {
                    let v = format!("{:o}", rng.below(1 << 20));
                    let n = v.len().min(field.len());
                    field[..n].copy_from_slice(&v.as_bytes()[..n]);
                }
                _ => field.fill(b'/'),
            }
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(&tar[at..at + BLOCK]);
            if !rng.chance(10) {
                fix_checksum(&mut block);
            }
            tar[at..at + BLOCK].copy_from_slice(&block);
        }
        4 if !tar.is_empty() => {
            let i = rng.below(tar.len() as u64) as usize;
            tar[i] ^= 1 << rng.below(8);
        }
        5 => {
            let keep = rng.below(tar.len() as u64 + 1) as usize;
            tar.truncate(keep);
        }
        6 => {
            // Duplicate a header (and what follows it) or a PAX header before it.
            if at + BLOCK <= tar.len() {
                let copy = tar[at..at + BLOCK].to_vec();
                tar.splice(at..at, copy);
            }
        }
        _ => {
            let extra = pax(
                if rng.chance(2) { b'x' } else { b'g' },
                &[(
                    *rng.pick(&[
                        "size",
                        "path",
                        "linkpath",
                        "mtime",
                        "uid",
                        "SCHILY.xattr.security.selinux",
                        "GNU.sparse.major",
                    ]),
                    *rng.pick(&[
                        &b"18446744073709551615"[..],
                        b"-1",
                        b"1024",
                        b"./a/b",
                        b"",
                        b"1.5",
                        b"x",
                    ]),
                )],
            );
            let at = at.min(tar.len());
            tar.splice(at..at, extra);
        }
    }
}

/// Checks one input in this (worker) process: no panic; verify and the extractor reach a
/// verdict; nothing written outside the target; the same list as bsdtar when well-formed.
/// Returns a failure description, and counts bsdtar comparisons in `compared`.
fn check_input(work: &Path, input: &Input, compared: &mut (u64, u64)) -> Result<(), String> {
    let tarball = work.join("input");
    fs::write(&tarball, &input.bytes).map_err(|e| e.to_string())?;
    let plain = match nixos_wsl::tar::decompress::open(fs::File::open(&tarball).unwrap()) {
        Ok(mut s) => {
            let mut v = Vec::new();
            let ok = std::io::Read::read_to_end(&mut s, &mut v).is_ok();
            ok.then_some(v)
        }
        Err(_) => None,
    };
    let ours = std::panic::catch_unwind(|| plain.as_deref().map(our_list))
        .map_err(|_| "panic in the reader".to_string())?;
    std::panic::catch_unwind(|| {
        let _ = nixos_wsl::tarball::verify::verify_file(&tarball);
    })
    .map_err(|_| "panic in verify".to_string())?;
    let sandbox = work.join("sandbox");
    let target = sandbox.join("target");
    fs::create_dir_all(&target).map_err(|e| e.to_string())?;
    let extracted = std::panic::catch_unwind(|| -> anyhow::Result<()> {
        let stream = nixos_wsl::tar::decompress::open(fs::File::open(&tarball)?)?;
        let mut x = Extractor::new(open_dir(&target)?, Owners::Mine)?;
        x.extract_all(&mut Reader::new(stream), &mut |_| {}, &mut |_| true)?;
        x.finish()?;
        Ok(())
    })
    .map_err(|_| "panic in the extractor".to_string())?;
    if let Err(e) = &extracted {
        let line = format!("{e:#}");
        if line.contains('\n') {
            return Err(format!("extractor error is not one line: {line:?}"));
        }
    }
    let outside: Vec<_> = fs::read_dir(&sandbox)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "target")
        .collect();
    if !outside.is_empty() {
        return Err(format!("written outside the target: {outside:?}"));
    }
    let sandbox_fd = open_dir(&sandbox).map_err(|e| e.to_string())?;
    extract::remove_tree(sandbox_fd.as_raw_fd(), b"target").map_err(|e| e.to_string())?;
    if input.well_formed {
        if let (Some(theirs), Some(ours)) = (plain.as_deref().and_then(bsdtar_list), ours) {
            compared.0 += 1;
            match (&theirs, &ours) {
                (Ok(t), Ok(o)) if t == o => compared.1 += 1,
                (Err(_), Err(_)) => compared.1 += 1,
                _ => {
                    return Err(format!(
                        "differs from bsdtar: bsdtar {theirs:?}, ours {ours:?}"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The worker: inputs `from..to`, progress on stdout (`start I`), a watchdog for timeouts.
fn fuzz_worker(seed: u64, from: u64, to: u64) {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let started = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    {
        let (current, started) = (current.clone(), started.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let i = current.load(Ordering::Relaxed);
            let since = epoch.elapsed().as_secs() - started.load(Ordering::Relaxed);
            if i != u64::MAX && since > INPUT_DEADLINE {
                println!("timeout {i}");
                std::process::exit(3);
            }
        });
    }
    let work = TempDir::new("fuzz");
    let mut compared = (0, 0);
    let mut out = std::io::stdout().lock();
    for i in from..to {
        writeln!(out, "start {i}").unwrap();
        started.store(epoch.elapsed().as_secs(), Ordering::Relaxed);
        current.store(i, Ordering::Relaxed);
        let input = gen_input(seed, i);
        if let Err(why) = check_input(&work.0, &input, &mut compared) {
            writeln!(out, "fail {i} {why:?}").unwrap();
            std::process::exit(2);
        }
    }
    writeln!(out, "compared {} agreed {}", compared.0, compared.1).unwrap();
    writeln!(out, "done").unwrap();
}

/// Saves input `i` for a failure report; returns where.
fn save_reproducer(seed: u64, i: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-tar-failures");
    let _ = fs::create_dir_all(&dir);
    let p = dir.join(format!("seed-{seed}-input-{i}.tar"));
    let _ = fs::write(&p, gen_input(seed, i).bytes);
    p
}

/// The fuzz harness: `NIXOS_WSL_FUZZ_TAR_INPUTS` inputs over two workers, each under
/// `RLIMIT_AS` = [`CHILD_AS`] (the stated memory bound) and a deadline per input.
#[test]
fn fuzz_tarballs() {
    let (inputs, seed) = fuzz_params();
    if child_mode() {
        let range = std::env::var("HOSTILE_FUZZ_RANGE").unwrap();
        let (a, b) = range.split_once("..").unwrap();
        fuzz_worker(seed, a.parse().unwrap(), b.parse().unwrap());
        return;
    }
    let workers = 2u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let from = inputs * w / workers;
            let to = inputs * (w + 1) / workers;
            std::thread::spawn(move || {
                let mut cmd = Command::new(std::env::current_exe().unwrap());
                cmd.args([
                    "fuzz_tarballs",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HOSTILE_CHILD", "1")
                .env("HOSTILE_FUZZ_RANGE", format!("{from}..{to}"))
                .env("NIXOS_WSL_FUZZ_TAR_SEED", seed.to_string());
                (
                    from,
                    to,
                    run_limited(cmd, CHILD_AS, Duration::from_secs(3600)),
                )
            })
        })
        .collect();
    let mut compared = (0u64, 0u64);
    let mut failures = Vec::new();
    for h in handles {
        let (from, to, o) = h.join().unwrap();
        let last = o
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("start "))
            .filter_map(|n| n.parse::<u64>().ok())
            .next_back();
        for l in o.stderr.lines() {
            if let Some(rest) = l.strip_prefix("compared ") {
                let nums: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                if let [c, a] = nums[..] {
                    compared.0 += c;
                    compared.1 += a;
                }
            }
        }
        if o.code != Some(0) || !o.stderr.contains("\ndone") {
            let i = last.unwrap_or(from);
            let why: String = o
                .stderr
                .lines()
                .filter(|l| l.starts_with("fail ") || l.starts_with("timeout "))
                .collect::<Vec<_>>()
                .join("; ");
            let saved = save_reproducer(seed, i);
            failures.push(format!(
                "inputs {from}..{to}: input {i} (seed {seed}): {} {why}; reproducer {}; rerun with NIXOS_WSL_FUZZ_TAR_SEED={seed}",
                if o.signal.is_some() { format!("killed by signal {:?}", o.signal) } else { format!("exit {:?}", o.code) },
                saved.display()
            ));
        }
    }
    eprintln!(
        "fuzz: {inputs} inputs, seed {seed}, {:.0}s, memory bound {} MiB per worker, bsdtar: {} well-formed inputs compared, {} agreed",
        start.elapsed().as_secs_f64(),
        CHILD_AS >> 20,
        compared.0,
        compared.1
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
