//! The tar header format: one 512-byte block per entry, plus PAX extended headers
//! (POSIX.1-2001) and GNU long-name blocks for what does not fit.
//!
//! Only pure functions live here: decoding a header for the reader, as libarchive (the
//! extractor behind `wsl --import`) decodes it. Numbers are octal ASCII or GNU base-256; names
//! longer than the ustar fields come from PAX `path`/`linkpath` records or GNU long-name
//! blocks. Writing is the `tar` crate's, in `writer.rs`.

use std::fmt;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// What an entry is, from its type flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// A type flag this crate does not handle (sparse files, volume labels, ...).
    Other(u8),
}

impl Kind {
    /// Decodes a type flag. `'7'` (contiguous file) is a regular file for every extractor.
    pub(crate) fn from_flag(flag: u8) -> Kind {
        match flag {
            b'0' | b'\0' | b'7' => Kind::Regular,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Directory,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }

    /// The type flag written for this kind.
    pub(crate) fn flag(self) -> u8 {
        match self {
            Kind::Regular => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Directory => b'5',
            Kind::Fifo => b'6',
            Kind::Other(flag) => flag,
        }
    }

    /// Whether the entry carries file data after its header.
    pub(crate) fn has_data(self) -> bool {
        matches!(self, Kind::Regular)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Regular => f.write_str("regular file"),
            Kind::HardLink => f.write_str("hard link"),
            Kind::Symlink => f.write_str("symlink"),
            Kind::CharDevice => f.write_str("character device"),
            Kind::BlockDevice => f.write_str("block device"),
            Kind::Directory => f.write_str("directory"),
            Kind::Fifo => f.write_str("fifo"),
            Kind::Other(flag) => write!(f, "unsupported entry type {:?}", *flag as char),
        }
    }
}

/// One archive entry's metadata, with long names and PAX overrides already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path as stored (for example `./etc/passwd` or `etc/`), raw bytes.
    pub path: Vec<u8>,
    /// Symlink target, or the archive path a hard link points to.
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Size of the data that follows the header (0 for everything but regular files).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    pub(crate) dev_major: u32,
    pub(crate) dev_minor: u32,
}

impl Entry {
    /// An entry of `kind` at `path` with everything else zero.
    pub fn new(kind: Kind, path: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.into(),
            link: Vec::new(),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            dev_major: 0,
            dev_minor: 0,
        }
    }
}

/// Why a header block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    Checksum {
        stored: u64,
        computed: u64,
    },
    Number {
        field: &'static str,
    },
    /// A size beyond [`MAX_SIZE`].
    Size(u64),
    Pax(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Checksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored}, computed {computed}): not a tar archive or corrupt"
            ),
            HeaderError::Number { field } => write!(f, "malformed number in header field {field}"),
            HeaderError::Size(size) => write!(
                f,
                "entry size {size} exceeds the limit of {MAX_SIZE} bytes (bsdtar refuses it too)"
            ),
            HeaderError::Pax(why) => write!(f, "malformed PAX extended header: {why}"),
        }
    }
}

impl std::error::Error for HeaderError {}

// Field offsets and lengths of the ustar header.
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 6);
const VERSION: (usize, usize) = (263, 2);
const DEVMAJOR: (usize, usize) = (329, 8);
const DEVMINOR: (usize, usize) = (337, 8);
const PREFIX: (usize, usize) = (345, 155);

fn field(block: &[u8; BLOCK], (at, len): (usize, usize)) -> &[u8] {
    &block[at..at + len]
}

/// A NUL-terminated string field.
fn cstr(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Largest entry size read, libarchive's `entry_limit` (2^60 bytes, an exbibyte): a larger
/// size field, in the header or in a PAX record, is refused as bsdtar refuses it ("Tar entry
/// size overflow"), and the reader's skip arithmetic can never wrap.
pub(crate) const MAX_SIZE: u64 = (1 << 60) - 1;

/// Decodes a numeric field the way libarchive's `tar_atol` does: GNU base-256 (two's
/// complement, so negative values such as a pre-1970 mtime) when the first byte has its high
/// bit set; otherwise octal ASCII after leading spaces or tabs, with an optional `-`, up to the
/// first byte that is not an octal digit (an empty field is 0). `None` when the value does not
/// fit an `i64`, where libarchive saturates (and then refuses sizes; we refuse every field).
pub(crate) fn parse_signed(bytes: &[u8]) -> Option<i64> {
    let Some(&first) = bytes.first() else {
        return Some(0);
    };
    if first & 0x80 != 0 {
        // Bit 6 is the sign of the remaining 7-bit two's complement number.
        let negative = first & 0x40 != 0;
        let sign_byte: u8 = if negative { 0xff } else { 0 };
        let mut rest = bytes;
        let mut lead = if negative { first } else { first & 0x7f };
        // More than 8 bytes: the high ones must be pure sign extension.
        while rest.len() > 8 {
            if lead != sign_byte {
                return None;
            }
            rest = &rest[1..];
            lead = rest[0];
        }
        if (lead ^ sign_byte) & 0x80 != 0 {
            return None;
        }
        let mut value: u64 = if negative { u64::MAX } else { 0 };
        value = (value << 8) | u64::from(lead);
        for &b in &rest[1..] {
            value = (value << 8) | u64::from(b);
        }
        return Some(value as i64);
    }
    let mut rest = bytes;
    while let [b' ' | b'\t', tail @ ..] = rest {
        rest = tail;
    }
    let negative = rest.first() == Some(&b'-');
    if negative {
        rest = &rest[1..];
    }
    let mut value: i64 = 0;
    for &d in rest {
        if !(b'0'..=b'7').contains(&d) {
            break;
        }
        let digit = i64::from(d - b'0');
        value = value
            .checked_mul(8)?
            .checked_add(if negative { -digit } else { digit })?;
    }
    Some(value)
}

/// A numeric field that must not be negative (sizes, ids, device numbers, the checksum).
pub(crate) fn parse_number(bytes: &[u8]) -> Option<u64> {
    u64::try_from(parse_signed(bytes)?).ok()
}

fn checksum(block: &[u8; BLOCK]) -> (u64, i64) {
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) {
            b' '
        } else {
            b
        };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// Whether a block is all zeros (the end-of-archive marker).
pub(crate) fn is_zero_block(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Whether libarchive's format bid would take `block` for a tar header with more than 50
/// points (`archive_read_format_tar_bid`): a valid checksum, ustar or GNU magic, a plausible
/// type flag and well-formed numeric fields. libarchive asks this of the block after a hard
/// link with a size in a ustar archive, to decide whether that size is data or a stray field.
pub(crate) fn bids_as_header(block: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_number(field(block, CHKSUM)) else {
        return false;
    };
    let (unsigned, signed) = checksum(block);
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return false;
    }
    let magic = field(block, MAGIC);
    let version = field(block, VERSION);
    let posix = magic == b"ustar\0" && version == b"00";
    let gnu = magic == b"ustar " && version == b" \0";
    let flag = block[TYPEFLAG];
    let numbers_ok = [MODE, UID, GID, MTIME, SIZE, DEVMAJOR, DEVMINOR]
        .into_iter()
        .all(|f| {
            let bytes = field(block, f);
            bytes[0] & 0x80 != 0 || bytes.iter().all(|&b| matches!(b, b'0'..=b'7' | b' ' | 0))
        });
    (posix || gnu) && (flag == 0 || flag.is_ascii_alphanumeric()) && numbers_ok
}

/// Which tar dialect a regular header is written in, from its magic (libarchive's format
/// detection, which decides how it reads hard links' sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Pre-POSIX (v7) tar: no magic.
    V7,
    Ustar,
    Gnu,
}

/// The dialect of a header block.
pub(crate) fn dialect(block: &[u8; BLOCK]) -> Dialect {
    if &block[MAGIC.0..MAGIC.0 + 8] == b"ustar  \0" {
        Dialect::Gnu
    } else if block[MAGIC.0..MAGIC.0 + 5] == *b"ustar" {
        Dialect::Ustar
    } else {
        Dialect::V7
    }
}

/// The fields of one raw header block, before long names and PAX records are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub(crate) flag: u8,
    pub(crate) entry: Entry,
}

/// Decodes one header block (not an all-zero block).
pub(crate) fn decode(block: &[u8; BLOCK]) -> Result<RawHeader, HeaderError> {
    let stored =
        parse_number(field(block, CHKSUM)).ok_or(HeaderError::Number { field: "chksum" })?;
    let (unsigned, signed) = checksum(block);
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        });
    }
    let number = |f: (usize, usize), name: &'static str| {
        parse_number(field(block, f)).ok_or(HeaderError::Number { field: name })
    };
    let magic = field(block, MAGIC);
    let is_ustar = magic == b"ustar\0" && field(block, VERSION) == b"00";
    let name = cstr(field(block, NAME));
    let path = if is_ustar {
        let prefix = cstr(field(block, PREFIX));
        if prefix.is_empty() {
            name.to_vec()
        } else {
            let mut p = prefix.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        }
    } else {
        name.to_vec()
    };
    let flag = block[TYPEFLAG];
    let kind = Kind::from_flag(flag);
    let has_devices = is_ustar || magic == b"ustar ";
    let size = number(SIZE, "size")?;
    if size > MAX_SIZE {
        return Err(HeaderError::Size(size));
    }
    let entry = Entry {
        path,
        link: cstr(field(block, LINKNAME)).to_vec(),
        kind,
        mode: (number(MODE, "mode")? & 0o7777) as u32,
        uid: number(UID, "uid")?,
        gid: number(GID, "gid")?,
        size,
        mtime: parse_signed(field(block, MTIME)).ok_or(HeaderError::Number { field: "mtime" })?,
        dev_major: if has_devices {
            u32::try_from(number(DEVMAJOR, "devmajor")?).unwrap_or(0)
        } else {
            0
        },
        dev_minor: if has_devices {
            u32::try_from(number(DEVMINOR, "devminor")?).unwrap_or(0)
        } else {
            0
        },
    };
    Ok(RawHeader { flag, entry })
}

/// The PAX records that override header fields.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pax {
    pub(crate) path: Option<Vec<u8>>,
    pub(crate) linkpath: Option<Vec<u8>>,
    pub(crate) size: Option<u64>,
    pub(crate) uid: Option<u64>,
    pub(crate) gid: Option<u64>,
    pub(crate) mtime: Option<i64>,
    /// GNU sparse files are stored with `GNU.sparse.*` records; extracting them is unsupported.
    pub(crate) sparse: bool,
    /// Keys of the records not interpreted above (`SCHILY.xattr.*`, ACLs, ...), in order, so
    /// validators can see them; extraction ignores them.
    pub(crate) other: Vec<Vec<u8>>,
}

impl Pax {
    /// Applies these overrides to an entry decoded from the following header.
    pub(crate) fn apply(&self, entry: &mut Entry) {
        if let Some(p) = &self.path {
            entry.path.clone_from(p);
        }
        if let Some(l) = &self.linkpath {
            entry.link.clone_from(l);
        }
        if let Some(s) = self.size {
            entry.size = s;
        }
        if let Some(u) = self.uid {
            entry.uid = u;
        }
        if let Some(g) = self.gid {
            entry.gid = g;
        }
        if let Some(m) = self.mtime {
            entry.mtime = m;
        }
    }
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses the body of a PAX extended header (`"%d %s=%s\n"` records).
pub(crate) fn parse_pax(mut data: &[u8]) -> Result<Pax, HeaderError> {
    let mut pax = Pax::default();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| HeaderError::Pax("record without length".into()))?;
        let len = parse_decimal(&data[..space])
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > space + 1 && l <= data.len())
            .ok_or_else(|| HeaderError::Pax("bad record length".into()))?;
        let record = &data[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| HeaderError::Pax("record not terminated by a newline".into()))?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| HeaderError::Pax("record without '='".into()))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let bad = |k: &str| HeaderError::Pax(format!("bad value for {k}"));
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => {
                let size = parse_decimal(value).ok_or_else(|| bad("size"))?;
                if size > MAX_SIZE {
                    return Err(HeaderError::Size(size));
                }
                pax.size = Some(size);
            }
            b"uid" => pax.uid = Some(parse_decimal(value).ok_or_else(|| bad("uid"))?),
            b"gid" => pax.gid = Some(parse_decimal(value).ok_or_else(|| bad("gid"))?),
            b"mtime" => {
                // Seconds with an optional fraction; we keep whole seconds.
                let text = std::str::from_utf8(value).map_err(|_| bad("mtime"))?;
                let whole = text.split('.').next().unwrap_or("");
                pax.mtime = Some(whole.parse().map_err(|_| bad("mtime"))?);
            }
            k if k.starts_with(b"GNU.sparse.") => pax.sparse = true,
            k => pax.other.push(k.to_vec()),
        }
        data = &data[len..];
    }
    Ok(pax)
}

/// Bytes of padding after `size` bytes of data.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"   644 \0"), Some(0o644));
        assert_eq!(parse_number(b"\0\0\0\0\0\0\0\0"), Some(0));
        // Like libarchive: digits up to the first non-octal byte.
        assert_eq!(parse_number(b"0009\0"), Some(0));
        assert_eq!(parse_number(b"\t 17x"), Some(0o17));
        assert_eq!(parse_signed(b"-17 "), Some(-0o17));
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[6] = 1; // 1 << 40, GNU base-256
        assert_eq!(parse_number(&field), Some(1 << 40));
        assert_eq!(parse_number(b"00000000777\0"), Some(0o777));
        assert_eq!(parse_signed(&[0xff; 8]), Some(-1));
        assert_eq!(parse_number(&[0xff; 8]), None);
        let mut minus_year = [0xffu8; 12];
        minus_year[4..].copy_from_slice(&(-31_536_000i64).to_be_bytes());
        assert_eq!(parse_signed(&minus_year), Some(-31_536_000));
        // 2^64-1 does not fit: refused, never wrapped.
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        huge[1..4].fill(0);
        assert_eq!(parse_signed(&huge), None);
    }

    #[test]
    fn pax_parsing_rejects_garbage() {
        assert!(parse_pax(b"9 path=x\n").is_ok());
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"garbage").is_err());
        assert!(parse_pax(b"22 GNU.sparse.major=1\n").unwrap().sparse);
        assert_eq!(
            parse_pax(b"20 mtime=123.456789\n").unwrap().mtime,
            Some(123)
        );
    }
}
