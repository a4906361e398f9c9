//! `wsl --import NAME DIR FILE --version 2` (wsl-behaviour.md section 4): a distro whose disk
//! is a tarball, extracted the way WSL does it, instead of the cached Debian rootfs.
//!
//! WSL extracts with bsdtar inside its VM and gives up on the first hard link with
//! "Unspecified error" (0x80004005); the result must contain `/etc` or `/bin/sh`. The
//! simulator therefore reads every header first ([`scan`]) and refuses such an archive before
//! anything exists ([`Refused`]), then extracts it as root with bsdtar if installed, else GNU
//! tar (both: numeric owners, modes, mtimes, symlinks; `..` members refused or skipped) into
//! the instance's disk: the overlay's upper dir, over a lower dir that holds nothing but the
//! simulator's marker (so the safety check accepts the root without the tarball having to
//! carry it). After import the default user is root: the launcher already falls back to uid 0
//! when `/etc/wsl.conf` names no default user. The distro is not booted: its first launch
//! is (as with `wsl --import`) the first start.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use super::distro::{Distro, DistroOptions};
use super::rootfs;
use super::safety::MARKER;

/// Why `wsl --import` fails on an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A hard link entry (`path` links to `target`): WSL's "Unspecified error".
    HardLink { path: String, target: String },
    /// Neither `/etc` nor `/bin/sh` is in the archive.
    NoEtcOrBinSh,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::HardLink { path, target } => write!(
                f,
                "Unspecified error (0x80004005): the tarball contains a hard link \
                 (/{path} => /{target}); WSL cannot import hard links"
            ),
            Refused::NoEtcOrBinSh => write!(
                f,
                "the tarball contains neither /etc nor /bin/sh; WSL refuses it as not a \
                 Linux root filesystem"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// What the headers of an archive say.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Entries (pax and GNU long-name headers not counted).
    pub entries: u64,
    /// Every hard link entry: (path, target), archive paths without a leading `./` or `/`.
    pub hard_links: Vec<(String, String)>,
    pub has_etc: bool,
    pub has_bin_sh: bool,
}

impl Scan {
    /// The first reason WSL would refuse the archive, if any.
    pub fn refusal(&self) -> Option<Refused> {
        if let Some((path, target)) = self.hard_links.first() {
            return Some(Refused::HardLink {
                path: path.clone(),
                target: target.clone(),
            });
        }
        if !self.has_etc && !self.has_bin_sh {
            return Some(Refused::NoEtcOrBinSh);
        }
        None
    }
}

/// Imports `tarball` as a new, not yet booted distro: refuses it as WSL would (the error is
/// a [`Refused`] then, and nothing is created), extracts it into the instance's disk, then
/// writes `opts.files` over it. `opts.root_shell` is ignored: root's shell is whatever the
/// tarball's `/etc/passwd` says (or `/bin/sh` without one).
pub fn import(opts: DistroOptions, tarball: &Path) -> Result<Distro> {
    import_onto(opts, tarball, marker_only_lower()?)
}

/// [`import`] of a tarball that holds only part of a system (a NixOS store and its database,
/// say), unpacked over the simulator's Debian rootfs, which stands in for the programs a
/// whole image brings (a shell, `nix-store`).
pub fn import_over_rootfs(opts: DistroOptions, tarball: &Path) -> Result<Distro> {
    import_onto(opts, tarball, rootfs::ensure()?.dir)
}

fn import_onto(mut opts: DistroOptions, tarball: &Path, lower: PathBuf) -> Result<Distro> {
    let scan = scan(tarball)?;
    if let Some(why) = scan.refusal() {
        return Err(anyhow!(why))
            .with_context(|| format!("wsl --import {} {}", opts.name, tarball.display()));
    }
    let files = std::mem::take(&mut opts.files);
    let d = Distro::new_for_import(opts, lower)?;
    extract(tarball, &d.state_dir().join("upper"))
        .with_context(|| format!("wsl --import {} {}", d.name(), tarball.display()))?;
    for (path, contents, mode) in files {
        d.write_file(&path, &contents, mode)?;
    }
    Ok(d)
}

/// The shared lower dir of imported distros: only the simulator's marker.
fn marker_only_lower() -> Result<PathBuf> {
    let dir = rootfs::cache_dir().join("import-lower");
    let marker = dir.join(MARKER.trim_start_matches('/'));
    if !marker.is_file() {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Written under a unique name and renamed: concurrent imports may race here.
        let tmp = dir.join(format!(".marker-{}", std::process::id()));
        fs::write(&tmp, "nixos-wsl simulator: imported distro\n")?;
        fs::rename(&tmp, &marker)?;
    }
    Ok(dir)
}

/// Extracts `tarball` into `dir` as WSL's bsdtar does (bsdtar if installed, else GNU tar).
pub fn extract(tarball: &Path, dir: &Path) -> Result<()> {
    let bsdtar = Command::new("bsdtar")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = if bsdtar {
        let mut c = Command::new("bsdtar");
        c.args(["-x", "-p", "--numeric-owner"]);
        c
    } else {
        let mut c = Command::new("tar");
        c.args(["-x", "-p", "--same-owner", "--numeric-owner"]);
        c
    };
    let out = cmd
        .arg("-f")
        .arg(tarball)
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", if bsdtar { "bsdtar" } else { "tar" }))?;
    if !out.status.success() {
        bail!(
            "extracting {} failed ({}): {}",
            tarball.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Reads every header of a (gzip, xz, zstd or uncompressed) tar archive.
pub fn scan(tarball: &Path) -> Result<Scan> {
    let (reader, mut child) = decompressed(tarball)?;
    let result = scan_stream(reader).with_context(|| format!("reading {}", tarball.display()));
    if let Some(c) = child.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    result
}

/// The archive's tar stream, decompressed by its magic number.
fn decompressed(tarball: &Path) -> Result<(Box<dyn BufRead>, Option<Child>)> {
    let mut file = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic)?;
    drop(file);
    let file = File::open(tarball)?;
    let tool = match &magic[..n] {
        [0x1f, 0x8b, ..] => {
            let gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            return Ok((Box::new(BufReader::with_capacity(1 << 20, gz)), None));
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0] => "xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        _ => return Ok((Box::new(BufReader::with_capacity(1 << 20, file)), None)),
    };
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(file)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {tool} -dc"))?;
    let out = child.stdout.take().unwrap();
    Ok((
        Box::new(BufReader::with_capacity(1 << 20, out)),
        Some(child),
    ))
}

/// A NUL-terminated header field.
fn field(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// A numeric header field: octal, or GNU base-256 when the high bit of the first byte is set.
fn number(b: &[u8]) -> Result<u64> {
    if b.first().is_some_and(|c| c & 0x80 != 0) {
        let mut n: u64 = u64::from(b[0] & 0x7f);
        for &c in &b[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(c)))
                .ok_or_else(|| anyhow!("base-256 number out of range"))?;
        }
        return Ok(n);
    }
    let text = String::from_utf8_lossy(field(b));
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| anyhow!("bad octal number {text:?}"))
}

/// `len key=value\n` records of a pax extended header.
fn pax_records(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(sp) = rest.iter().position(|&c| c == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
        else {
            break;
        };
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                rec[eq + 1..].to_vec(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

/// An archive path as WSL's root-relative view: no leading `/` or `./`, no trailing `/`.
fn normalize(raw: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(raw).into_owned();
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r.to_string();
        } else if let Some(r) = s.strip_prefix('/') {
            s = r.to_string();
        } else {
            break;
        }
    }
    s.trim_end_matches('/').to_string()
}

fn read_data(r: &mut dyn BufRead, size: u64) -> Result<Vec<u8>> {
    if size > 1 << 24 {
        bail!("an extended header of {size} bytes");
    }
    let mut data = vec![0u8; size as usize];
    r.read_exact(&mut data)?;
    skip(r, padding(size))?;
    Ok(data)
}

fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

fn skip(r: &mut dyn BufRead, n: u64) -> Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied != n {
        bail!("the archive is truncated");
    }
    Ok(())
}

/// Walks the headers of an uncompressed tar stream (ustar, GNU and pax), checking every
/// header's checksum as bsdtar does.
pub fn scan_stream(mut r: impl BufRead) -> Result<Scan> {
    let r: &mut dyn BufRead = &mut r;
    let mut scan = Scan::default();
    let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut block = [0u8; 512];
    loop {
        match r.read_exact(&mut block) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && scan.entries > 0 => break,
            Err(e) => return Err(e).context("reading a tar header"),
        }
        if block.iter().all(|&b| b == 0) {
            break; // end of archive
        }
        let stored = number(&block[148..156])?;
        let sum: u64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != sum {
            bail!(
                "damaged tar header (checksum mismatch) after {} entries",
                scan.entries
            );
        }
        let kind = block[156];
        let mut size = number(&block[124..136])?;
        match kind {
            b'x' => {
                pax = pax_records(&read_data(r, size)?);
                continue;
            }
            b'g' => {
                read_data(r, size)?;
                continue;
            }
            b'L' => {
                long_name = Some(field(&read_data(r, size)?).to_vec());
                continue;
            }
            b'K' => {
                long_link = Some(field(&read_data(r, size)?).to_vec());
                continue;
            }
            _ => {}
        }
        let mut name = long_name.take().unwrap_or_else(|| {
            let name = field(&block[0..100]);
            let prefix = field(&block[345..500]);
            // Only POSIX ustar has a prefix field; old GNU headers keep times there.
            if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
                [prefix, b"/", name].concat()
            } else {
                name.to_vec()
            }
        });
        let mut link = long_link
            .take()
            .unwrap_or_else(|| field(&block[157..257]).to_vec());
        for (key, value) in pax.drain(..) {
            match key.as_str() {
                "path" => name = value,
                "linkpath" => link = value,
                "size" => {
                    size = String::from_utf8_lossy(&value)
                        .parse()
                        .map_err(|_| anyhow!("bad pax size"))?
                }
                _ => {}
            }
        }
        let path = normalize(&name);
        scan.entries += 1;
        if path == "etc" || path.starts_with("etc/") {
            scan.has_etc = true;
        }
        if path == "bin/sh" {
            scan.has_bin_sh = true;
        }
        // Which entries carry data, as libarchive reads them: symlinks, devices, FIFOs and
        // directories never do; a hard link may (pax "hard link with contents").
        let data = match kind {
            b'1' => {
                scan.hard_links.push((path, normalize(&link)));
                size
            }
            b'2' | b'3' | b'4' | b'5' | b'6' => 0,
            _ => size,
        };
        skip(r, data + padding(data))?;
    }
    Ok(scan)
}
