//! Streaming tar reader over any `BufRead`: yields entries with GNU long names and PAX records
//! applied, and hands out file data as borrowed slices so the extractor can `write` them
//! without another copy.
//!
//! It reads an archive the way libarchive (bsdtar, behind `wsl --import`) does, so that what
//! `tarball verify` judges and what the installer extracts are the files WSL would import:
//! numbers as `tar_atol` reads them, data sizes of hard links and special files by libarchive's
//! rules, global PAX headers skipped (libarchive does not apply them), a second `x` or `g`
//! header before one entry refused. Whatever the input, the reader holds at most one extended
//! header (bounded by [`MAX_META`]) and refuses beyond the [limits](#limits) in one line.
//!
//! # Limits
//!
//! [`MAX_PATH`], [`MAX_ENTRIES`], [`MAX_METADATA`], [`MAX_PAX_KEY`], [`MAX_META`] and
//! [`header::MAX_SIZE`] bound what a hostile archive can make the tool keep in memory. None is
//! near what a real root filesystem needs (a NixOS closure: 200,000-500,000 entries, paths
//! under 300 bytes, some 50 MB of path and link bytes in all).

use std::io::{self, BufRead};

use super::header::{self, Dialect, Entry, Kind, Pax, BLOCK};

/// Longest entry path or link target, in bytes, as stored (after PAX and GNU long names).
/// Linux's `PATH_MAX` is 4096 including the terminating NUL: no system call takes a longer
/// path, and `symlink(2)` refuses a longer target, so such an entry could be neither created
/// by a packer from a real tree nor used once unpacked. It also bounds the depth of any path
/// at 2,048 components, which bounds the extractor's work per entry.
pub(crate) const MAX_PATH: usize = 4096;

/// Most entries an archive may hold, counting the directories its paths imply but do not
/// list (the index keeps one node for each). Four times the largest NixOS closure; at a few
/// hundred bytes per entry, the index stays under 1 GB whatever the archive.
pub(crate) const MAX_ENTRIES: u64 = 1 << 21;

/// Most bytes of paths, link targets and PAX keys in the whole archive, which the index,
/// the planner and the extractor keep for later entries. Five times a NixOS closure's.
pub(crate) const MAX_METADATA: u64 = 256 << 20;

/// Longest PAX record key. Keys are kept (`SCHILY.xattr.NAME` for the xattr check); Linux's
/// `XATTR_NAME_MAX` is 255, so a longer key names nothing WSL could store.
pub(crate) const MAX_PAX_KEY: usize = 1024;

/// Largest PAX or GNU long-name block we accept: they hold a path and attributes (an xattr
/// value is at most 64 KiB, `XATTR_SIZE_MAX`), not data. Only one is held at a time.
pub(crate) const MAX_META: u64 = 1 << 20;

fn invalid(offset: u64, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("tar archive at byte {offset}: {why}"),
    )
}

fn truncated(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("tar archive truncated at byte {offset}"),
    )
}

/// A path for a one-line message: lossy, escaped, and cut short.
pub(crate) fn shown(path: &[u8]) -> String {
    let cut = &path[..path.len().min(80)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if path.len() > cut.len() {
        s.push_str("...");
    }
    s
}

/// libarchive's archive format state, which persists across entries and decides whether a
/// hard link's size is data (`ARCHIVE_FORMAT_TAR*` in `archive_read_support_format_tar.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V7,
    Ustar,
    Gnu,
    /// A PAX header (`x` or `g`) has been seen, ever.
    Pax,
}

/// Reads entries one after another. After [`Reader::next_entry`] returns an entry, its data is
/// available through [`Reader::data`]/[`Reader::consume`] until the next call, which skips
/// whatever was not read.
pub struct Reader<R> {
    inner: R,
    remaining: u64,
    pad: u64,
    /// A block read ahead (libarchive's bid on the block after a hard link), served before
    /// `inner`; `peek_pos` bytes of it are consumed.
    peeked: Option<Box<[u8; BLOCK]>>,
    peek_pos: usize,
    format: Format,
    /// Uninterpreted PAX keys of the current entry.
    pax_keys: Vec<Vec<u8>>,
    offset: u64,
    entries: u64,
    metadata: u64,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            remaining: 0,
            pad: 0,
            peeked: None,
            peek_pos: 0,
            format: Format::V7,
            pax_keys: Vec::new(),
            offset: 0,
            entries: 0,
            metadata: 0,
            done: false,
        }
    }

    /// Keys of the current entry's PAX records that [`Reader::next_entry`] did not apply to the
    /// entry, such as `SCHILY.xattr.security.selinux`.
    pub(crate) fn pax_keys(&self) -> &[Vec<u8>] {
        &self.pax_keys
    }

    /// Bytes of the (uncompressed) archive consumed so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Counts `n` more entries (the index adds the directories paths imply) against
    /// [`MAX_ENTRIES`]; the error names `what`.
    pub(crate) fn count_entries(&mut self, n: u64, what: &[u8]) -> io::Result<()> {
        self.entries = self.entries.saturating_add(n);
        if self.entries > MAX_ENTRIES {
            return Err(invalid(
                self.offset,
                format!(
                    "entry {}: more than {MAX_ENTRIES} entries (MAX_ENTRIES, including implied directories)",
                    shown(what)
                ),
            ));
        }
        Ok(())
    }

    /// The bytes available next: the read-ahead block first, then `inner`.
    fn fill(&mut self) -> io::Result<&[u8]> {
        if let Some(b) = &self.peeked {
            return Ok(&b[self.peek_pos..]);
        }
        self.inner.fill_buf()
    }

    fn advance(&mut self, n: usize) {
        match &self.peeked {
            Some(_) => {
                self.peek_pos += n;
                if self.peek_pos >= BLOCK {
                    self.peeked = None;
                    self.peek_pos = 0;
                }
            }
            None => self.inner.consume(n),
        }
        self.offset += n as u64;
    }

    /// Reads up to `buf.len()` bytes, short only at end of input.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let avail = self.fill()?;
            if avail.is_empty() {
                break;
            }
            let n = avail.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&avail[..n]);
            self.advance(n);
            filled += n;
        }
        Ok(filled)
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let avail = self.fill()?;
            if avail.is_empty() {
                return Err(truncated(self.offset));
            }
            let k = (avail.len() as u64).min(n) as usize;
            self.advance(k);
            n -= k as u64;
        }
        Ok(())
    }

    /// Data plus padding of an entry of `size` bytes; `size` is at most `MAX_SIZE` (2^60), so
    /// this cannot overflow, but it is checked all the same.
    fn span(&self, size: u64) -> io::Result<u64> {
        size.checked_add(header::padding(size))
            .ok_or_else(|| invalid(self.offset, format!("entry size {size} overflows")))
    }

    fn read_meta_body(&mut self, size: u64, limit: u64, what: &str) -> io::Result<Vec<u8>> {
        if size > limit {
            return Err(invalid(
                self.offset,
                format!("{what} of {size} bytes exceeds the limit of {limit} bytes"),
            ));
        }
        let mut body = vec![0u8; size as usize];
        if self.read_full(&mut body)? != body.len() {
            return Err(truncated(self.offset));
        }
        self.skip(header::padding(size))?;
        Ok(body)
    }

    /// Adds `n` bytes to the metadata kept for the archive, against [`MAX_METADATA`].
    fn count_metadata(&mut self, n: usize, what: &[u8]) -> io::Result<()> {
        self.metadata = self.metadata.saturating_add(n as u64);
        if self.metadata > MAX_METADATA {
            return Err(invalid(
                self.offset,
                format!(
                    "entry {}: more than {MAX_METADATA} bytes of paths, link targets and PAX keys in all (MAX_METADATA)",
                    shown(what)
                ),
            ));
        }
        Ok(())
    }

    /// Whether the next block would pass libarchive's bid as a tar header (`false` at the
    /// end of the input). The block stays to be read.
    fn next_block_is_header(&mut self) -> io::Result<bool> {
        let at = self.offset;
        let mut block = Box::new([0u8; BLOCK]);
        let n = self.read_full(&mut block[..])?;
        let verdict = n == BLOCK && header::bids_as_header(&block);
        if n == BLOCK {
            debug_assert!(self.peeked.is_none());
            self.peeked = Some(block);
            self.peek_pos = 0;
            self.offset = at;
        } else if n > 0 {
            return Err(truncated(self.offset));
        }
        Ok(verdict)
    }

    /// The next entry, or `None` at the end of the archive.
    ///
    /// Long on purpose: one loop over header blocks, consuming the extended records (PAX
    /// local and global, GNU long names and links) that precede an entry, in libarchive's
    /// order and with its limits; [`Reader::finish_entry`] then decodes the entry itself.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let left = self.remaining.checked_add(self.pad).ok_or_else(|| {
            invalid(
                self.offset,
                format!("entry size {} overflows", self.remaining),
            )
        })?;
        self.skip(left)?;
        self.remaining = 0;
        self.pad = 0;
        let mut local: Option<Pax> = None;
        let mut seen_global = false;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let at = self.offset;
            let mut block = [0u8; BLOCK];
            match self.read_full(&mut block)? {
                0 if local.is_none() && long_name.is_none() && long_link.is_none() => {
                    // No end-of-archive marker: accepted, like GNU tar and bsdtar do.
                    self.done = true;
                    return Ok(None);
                }
                BLOCK => {}
                _ => return Err(truncated(self.offset)),
            }
            if header::is_zero_block(&block) {
                self.done = true;
                return Ok(None);
            }
            let raw = header::decode(&block).map_err(|e| invalid(at, e))?;
            match raw.flag {
                b'x' | b'X' => {
                    if local.is_some() {
                        return Err(invalid(at, "redundant 'x' header (bsdtar refuses it too)"));
                    }
                    self.format = Format::Pax;
                    let body = self.read_meta_body(raw.entry.size, MAX_META, "PAX header")?;
                    local = Some(header::parse_pax(&body).map_err(|e| invalid(at, e))?);
                }
                b'g' => {
                    // libarchive skips global headers' records (none of them applies to the
                    // entries it returns), so a `size` or `path` there changes nothing.
                    if seen_global {
                        return Err(invalid(at, "redundant 'g' header (bsdtar refuses it too)"));
                    }
                    seen_global = true;
                    self.format = Format::Pax;
                    if raw.entry.size == 0 {
                        return Err(invalid(
                            at,
                            "empty global PAX header (bsdtar refuses it too)",
                        ));
                    }
                    let span = self.span(raw.entry.size)?;
                    self.skip(span)?;
                }
                b'L' | b'K' => {
                    self.format = Format::Gnu;
                    let what = if raw.flag == b'L' {
                        "GNU long name"
                    } else {
                        "GNU long link"
                    };
                    // One more byte for the terminating NUL GNU tar writes.
                    let body = self.read_meta_body(raw.entry.size, MAX_PATH as u64 + 1, what)?;
                    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                    let name = body[..end].to_vec();
                    if raw.flag == b'L' {
                        long_name = Some(name);
                    } else {
                        long_link = Some(name);
                    }
                }
                b'V' => {
                    // A GNU volume label: not an entry; libarchive skips it.
                    self.format = Format::Gnu;
                    let span = self.span(raw.entry.size)?;
                    self.skip(span)?;
                }
                _ => return self.finish_entry(at, &block, raw, local, long_name, long_link),
            }
        }
    }

    /// Long on purpose: every field of the entry, each decoded by libarchive's rule with the
    /// PAX record overriding it, in the order libarchive applies them.
    fn finish_entry(
        &mut self,
        at: u64,
        block: &[u8; BLOCK],
        raw: header::RawHeader,
        local: Option<Pax>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> io::Result<Option<Entry>> {
        self.format = match (header::dialect(block), self.format) {
            (Dialect::Gnu, _) => Format::Gnu,
            (Dialect::Ustar, Format::Pax) => Format::Pax,
            (Dialect::Ustar, _) => Format::Ustar,
            (Dialect::V7, _) => Format::V7,
        };
        let mut entry = raw.entry;
        if let Some(name) = long_name {
            entry.path = name;
        }
        if let Some(link) = long_link {
            entry.link = link;
        }
        let pax = local.unwrap_or_default();
        pax.apply(&mut entry);
        for (what, bytes) in [("path", &entry.path), ("link target", &entry.link)] {
            if bytes.len() > MAX_PATH {
                return Err(invalid(
                    at,
                    format!(
                        "entry {}: {what} of {} bytes exceeds the limit of {MAX_PATH} bytes (MAX_PATH, Linux's PATH_MAX)",
                        shown(&entry.path),
                        bytes.len()
                    ),
                ));
            }
        }
        if let Some(k) = pax.other.iter().find(|k| k.len() > MAX_PAX_KEY) {
            return Err(invalid(
                at,
                format!(
                    "entry {}: PAX key of {} bytes exceeds the limit of {MAX_PAX_KEY} bytes (MAX_PAX_KEY)",
                    shown(&entry.path),
                    k.len()
                ),
            ));
        }
        let keys: usize = pax.other.iter().map(Vec::len).sum();
        self.count_metadata(entry.path.len() + entry.link.len() + keys, &entry.path)?;
        self.count_entries(1, &entry.path)?;
        self.pax_keys = pax.other;
        if pax.sparse || raw.flag == b'S' {
            return Err(invalid(
                at,
                format!(
                    "entry {}: sparse files are not supported (bsdtar would expand them; pack without --sparse)",
                    shown(&entry.path)
                ),
            ));
        }
        // libarchive: a "regular" entry whose path ends in '/' is a directory without data.
        if entry.kind == Kind::Regular && entry.path.ends_with(b"/") {
            entry.kind = Kind::Directory;
        }
        match entry.kind {
            // libarchive: these never carry data, whatever the size field says.
            Kind::Symlink | Kind::CharDevice | Kind::BlockDevice | Kind::Directory | Kind::Fifo => {
                entry.size = 0;
            }
            // libarchive: a hard link's size is data only in a pax interchange archive, never
            // in v7 or GNU ones, and in a ustar one only when the next block is not a header.
            Kind::HardLink if entry.size > 0 => {
                let ignore = match self.format {
                    Format::Pax => false,
                    Format::V7 | Format::Gnu => true,
                    Format::Ustar => self.next_block_is_header()?,
                };
                if ignore {
                    entry.size = 0;
                }
            }
            _ => {}
        }
        self.remaining = entry.size;
        self.pad = header::padding(entry.size);
        Ok(Some(entry))
    }

    /// The next piece of the current entry's data (empty once all of it was consumed).
    pub(crate) fn data(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let offset = self.offset;
        let remaining = self.remaining;
        let avail = self.fill()?;
        if avail.is_empty() {
            return Err(truncated(offset));
        }
        let n = (avail.len() as u64).min(remaining) as usize;
        Ok(&avail[..n])
    }

    /// Marks `n` bytes returned by [`Reader::data`] as used.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n as u64 <= self.remaining);
        self.advance(n);
        self.remaining -= n as u64;
    }

    /// Reads the rest of the current entry's data, failing if it is longer than `limit`.
    pub(crate) fn read_data(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        if self.remaining > limit {
            return Err(invalid(
                self.offset,
                format!("entry data larger than {limit} bytes"),
            ));
        }
        let mut out = Vec::with_capacity(self.remaining as usize);
        loop {
            let chunk = self.data()?;
            if chunk.is_empty() {
                return Ok(out);
            }
            let n = chunk.len();
            out.extend_from_slice(chunk);
            self.consume(n);
        }
    }

    /// Reads up to `n` bytes of the current entry's data (fewer if the entry is shorter).
    pub(crate) fn read_head(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let chunk = self.data()?;
            if chunk.is_empty() {
                break;
            }
            let k = chunk.len().min(n - out.len());
            out.extend_from_slice(&chunk[..k]);
            self.consume(k);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::writer::Writer;

    fn archive(entries: &[(Entry, &[u8])]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (e, data) in entries {
            w.append(e, &mut &data[..]).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let mut f = Entry::new(Kind::Regular, b"./a".to_vec());
        f.size = 3;
        let long = format!("./{}", "n".repeat(200)).into_bytes();
        let mut s = Entry::new(Kind::Symlink, long.clone());
        s.link = b"a".to_vec();
        let bytes = archive(&[(f.clone(), b"abc"), (s.clone(), b"")]);
        assert_eq!(bytes.len() % 10240, 0);
        let mut r = Reader::new(&bytes[..]);
        assert_eq!(r.next_entry().unwrap().unwrap(), f);
        assert_eq!(r.read_data(10).unwrap(), b"abc");
        assert_eq!(r.next_entry().unwrap().unwrap(), s);
        assert_eq!(r.next_entry().unwrap(), None);
        assert_eq!(r.next_entry().unwrap(), None);
    }

    #[test]
    fn skips_unread_data_and_detects_truncation() {
        let mut f = Entry::new(Kind::Regular, b"./big".to_vec());
        f.size = 5000;
        let data = vec![7u8; 5000];
        let bytes = archive(&[
            (f.clone(), &data),
            (Entry::new(Kind::Directory, b"./d/".to_vec()), b""),
        ]);
        let mut r = Reader::new(&bytes[..]);
        r.next_entry().unwrap();
        assert_eq!(r.read_head(4).unwrap(), vec![7u8; 4]);
        assert_eq!(r.next_entry().unwrap().unwrap().path, b"./d/");

        let cut = &bytes[..BLOCK + 1000];
        let mut r = Reader::new(cut);
        r.next_entry().unwrap();
        let err = r.read_data(10_000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let junk = vec![0x42u8; 2048];
        let err = Reader::new(&junk[..]).next_entry().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
