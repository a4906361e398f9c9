//! Streaming tar reader over any `BufRead`: yields entries with GNU long names and PAX records
//! applied, and hands out file data as borrowed slices so the extractor can `write` them
//! without another copy.

use std::io::{self, BufRead};

use super::header::{self, Entry, Kind, Pax, BLOCK};

/// Largest PAX or GNU long-name block we accept (they hold a path, not data).
const MAX_META: u64 = 1 << 20;

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

/// Reads entries one after another. After [`Reader::next_entry`] returns an entry, its data is
/// available through [`Reader::data`]/[`Reader::consume`] until the next call, which skips
/// whatever was not read.
pub struct Reader<R> {
    inner: R,
    remaining: u64,
    pad: u64,
    global: Pax,
    /// Uninterpreted PAX keys of the current entry (global ones first).
    pax_keys: Vec<Vec<u8>>,
    offset: u64,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            remaining: 0,
            pad: 0,
            global: Pax::default(),
            pax_keys: Vec::new(),
            offset: 0,
            done: false,
        }
    }

    /// Keys of the current entry's PAX records (global and its own) that [`Reader::next_entry`]
    /// did not apply to the entry, such as `SCHILY.xattr.security.selinux`.
    pub fn pax_keys(&self) -> &[Vec<u8>] {
        &self.pax_keys
    }

    /// Bytes of the (uncompressed) archive consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads up to `buf.len()` bytes, short only at end of input.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let n = avail.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&avail[..n]);
            self.inner.consume(n);
            filled += n;
            self.offset += n as u64;
        }
        Ok(filled)
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Err(truncated(self.offset));
            }
            let k = (avail.len() as u64).min(n) as usize;
            self.inner.consume(k);
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn read_meta_body(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(invalid(
                self.offset,
                format!("extended header of {size} bytes"),
            ));
        }
        let mut body = vec![0u8; size as usize];
        if self.read_full(&mut body)? != body.len() {
            return Err(truncated(self.offset));
        }
        self.skip(header::padding(size))?;
        Ok(body)
    }

    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        let mut local = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let at = self.offset;
            let mut block = [0u8; BLOCK];
            match self.read_full(&mut block)? {
                0 => {
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
                b'x' => {
                    let body = self.read_meta_body(raw.entry.size)?;
                    local = local.merged(&header::parse_pax(&body).map_err(|e| invalid(at, e))?);
                }
                b'g' => {
                    let body = self.read_meta_body(raw.entry.size)?;
                    self.global = self
                        .global
                        .merged(&header::parse_pax(&body).map_err(|e| invalid(at, e))?);
                }
                b'L' | b'K' => {
                    let body = self.read_meta_body(raw.entry.size)?;
                    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                    let name = body[..end].to_vec();
                    if raw.flag == b'L' {
                        long_name = Some(name);
                    } else {
                        long_link = Some(name);
                    }
                }
                _ => {
                    let mut entry = raw.entry;
                    if let Some(name) = long_name {
                        entry.path = name;
                    }
                    if let Some(link) = long_link {
                        entry.link = link;
                    }
                    let pax = self.global.merged(&local);
                    pax.apply(&mut entry);
                    self.pax_keys = pax.other;
                    if pax.sparse || raw.flag == b'S' {
                        return Err(invalid(
                            at,
                            format!(
                                "{}: sparse files are not supported",
                                String::from_utf8_lossy(&entry.path)
                            ),
                        ));
                    }
                    // Like bsdtar: these types never carry data, whatever the size field says.
                    if matches!(
                        entry.kind,
                        Kind::Symlink
                            | Kind::CharDevice
                            | Kind::BlockDevice
                            | Kind::Directory
                            | Kind::Fifo
                    ) {
                        entry.size = 0;
                    }
                    self.remaining = entry.size;
                    self.pad = header::padding(entry.size);
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// The next piece of the current entry's data (empty once all of it was consumed).
    pub fn data(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let offset = self.offset;
        let remaining = self.remaining;
        let avail = self.inner.fill_buf()?;
        if avail.is_empty() {
            return Err(truncated(offset));
        }
        let n = (avail.len() as u64).min(remaining) as usize;
        Ok(&avail[..n])
    }

    /// Marks `n` bytes returned by [`Reader::data`] as used.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n as u64 <= self.remaining);
        self.inner.consume(n);
        self.offset += n as u64;
        self.remaining -= n as u64;
    }

    /// Bytes of the current entry's data not consumed yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the rest of the current entry's data, failing if it is longer than `limit`.
    pub fn read_data(&mut self, limit: u64) -> io::Result<Vec<u8>> {
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
    pub fn read_head(&mut self, n: usize) -> io::Result<Vec<u8>> {
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
    use crate::tarball::writer::Writer;

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
