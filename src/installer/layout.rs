//! Where the installer tarball keeps its files, and the formats of the manifest and of the
//! commit journal. Shared by the tarball builder (`nixos-wsl tarball installer`) and the
//! installer itself, so the two can never disagree.

use std::fmt;

/// The installer's directory, relative to the root. Everything the installer owns lives here
/// (except `/etc/passwd` and `/bin/sh`, which the root filesystem replaces), so removing it
/// removes the installer.
pub(crate) const DIR: &str = "nixos-wsl-installer";
/// The installer binary, root's login shell in the installer system.
pub(crate) const BINARY: &str = "nixos-wsl-installer";
/// The embedded root filesystem tarball.
pub(crate) const ROOTFS: &str = "rootfs.tar.gz";
/// Size and SHA-256 of [`ROOTFS`], recorded at build time.
pub(crate) const MANIFEST: &str = "manifest";
/// Present while an extraction is under way (or was interrupted).
pub(crate) const MARKER: &str = "in-progress";
/// The renames that switch the system over, written once the root filesystem is complete.
pub(crate) const JOURNAL: &str = "commit";

/// Paths the installer's system depends on until the very end: while `/etc/passwd` names the
/// installer as root's shell, an interrupted install is completed by the next launch. The
/// root filesystem's own copies are written under temporary names and renamed into place last.
pub(crate) const SWITCH_PATHS: &[&[u8]] = &[b"etc/passwd"];

/// Absolute path of the installer binary inside the installer system.
pub(crate) fn binary_path() -> String {
    format!("/{DIR}/{BINARY}")
}

/// What the builder records about the embedded tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Size of the compressed tarball in bytes.
    pub(crate) size: u64,
    /// SHA-256 of the compressed tarball.
    pub(crate) sha256: [u8; 32],
    /// Size of the uncompressed tar stream (for progress).
    pub(crate) unpacked: u64,
    /// Number of entries (for the summary line).
    pub(crate) entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(pub(crate) String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// The SHA-256 of everything `r` yields, and how many bytes that was: the one hashing loop of
/// the installer's check and the image builder's manifest.
pub(crate) fn sha256(r: &mut impl std::io::Read) -> std::io::Result<([u8; 32], u64)> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((h.finalize().into(), size))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Manifest {
    pub(crate) fn render(&self) -> String {
        format!(
            "# nixos-wsl installer manifest: the embedded root filesystem\nformat 1\nfile {ROOTFS}\nsize {}\nsha256 {}\nunpacked {}\nentries {}\n",
            self.size,
            hex(&self.sha256),
            self.unpacked,
            self.entries
        )
    }

    pub(crate) fn parse(text: &str) -> Result<Manifest, FormatError> {
        let (mut size, mut sha, mut unpacked, mut entries, mut format) =
            (None, None, None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| FormatError(format!("malformed manifest line {line:?}")))?;
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|_| FormatError(format!("bad number in {line:?}")))
            };
            match key {
                "format" => format = Some(num()?),
                "file" if value != ROOTFS => {
                    return Err(FormatError(format!(
                        "manifest names {value:?}, expected {ROOTFS:?}"
                    )));
                }
                "size" => size = Some(num()?),
                "sha256" => {
                    sha = Some(
                        unhex32(value)
                            .ok_or_else(|| FormatError(format!("bad sha256 {value:?}")))?,
                    )
                }
                "unpacked" => unpacked = Some(num()?),
                "entries" => entries = Some(num()?),
                _ => {} // newer builders may add keys
            }
        }
        if format != Some(1) {
            return Err(FormatError(
                "unsupported manifest format (expected 1)".into(),
            ));
        }
        Ok(Manifest {
            size: size.ok_or_else(|| FormatError("manifest lacks size".into()))?,
            sha256: sha.ok_or_else(|| FormatError("manifest lacks sha256".into()))?,
            unpacked: unpacked.unwrap_or(0),
            entries: entries.unwrap_or(0),
        })
    }
}

/// One rename of the commit: `tmp` (a sibling of `path`) replaces `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub(crate) tmp: Vec<u8>,
    pub(crate) path: Vec<u8>,
}

fn journal_safe(p: &[u8]) -> bool {
    !p.is_empty() && !p.contains(&b'\n') && !p.contains(&b'\t') && !p.starts_with(b"/")
}

/// Renders the commit journal; `None` if a path cannot be represented (never for
/// [`SWITCH_PATHS`] and the installer's temporary names).
pub(crate) fn render_journal(renames: &[Rename]) -> Option<Vec<u8>> {
    let mut out =
        b"# nixos-wsl installer commit journal: tmp<TAB>path, applied in order\n".to_vec();
    for r in renames {
        if !journal_safe(&r.tmp) || !journal_safe(&r.path) {
            return None;
        }
        out.extend_from_slice(&r.tmp);
        out.push(b'\t');
        out.extend_from_slice(&r.path);
        out.push(b'\n');
    }
    out.extend_from_slice(b"end\n");
    Some(out)
}

/// Parses a journal. A journal without its final `end` line was cut short while being written
/// and is rejected (it is only trusted once complete; it is written to a temporary name and
/// renamed, so this is a second line of defence).
pub(crate) fn parse_journal(data: &[u8]) -> Result<Vec<Rename>, FormatError> {
    let mut renames = Vec::new();
    let mut complete = false;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        if line == b"end" {
            complete = true;
            break;
        }
        let tab = line
            .iter()
            .position(|&b| b == b'\t')
            .ok_or_else(|| FormatError("malformed journal line".into()))?;
        let (tmp, path) = (&line[..tab], &line[tab + 1..]);
        if !journal_safe(tmp) || !journal_safe(path) {
            return Err(FormatError("malformed journal line".into()));
        }
        renames.push(Rename {
            tmp: tmp.to_vec(),
            path: path.to_vec(),
        });
    }
    if !complete {
        return Err(FormatError("journal is incomplete".into()));
    }
    Ok(renames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_roundtrip() {
        let m = Manifest {
            size: 12345,
            sha256: [0xab; 32],
            unpacked: 99,
            entries: 7,
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert!(Manifest::parse("format 1\nsize 1\n").is_err());
        assert!(Manifest::parse("format 2\nsize 1\nsha256 00\n").is_err());
        assert!(Manifest::parse(&m.render().replace("sha256 ab", "sha256 zz")).is_err());
    }

    #[test]
    fn journal_roundtrip_and_truncation() {
        let r = vec![Rename {
            tmp: b"etc/.nixos-wsl-part-3".to_vec(),
            path: b"etc/passwd".to_vec(),
        }];
        let text = render_journal(&r).unwrap();
        assert_eq!(parse_journal(&text).unwrap(), r);
        assert!(parse_journal(&text[..text.len() - 4]).is_err());
        assert!(render_journal(&[Rename {
            tmp: b"a\nb".to_vec(),
            path: b"x".to_vec()
        }])
        .is_none());
    }
}
