//! Deterministic tar writer: the output depends only on the entries and data given, never on
//! the clock, the user database or the process.

use std::io::{self, Read, Write};

use super::header::{self, Entry, Kind, BLOCK};

/// GNU tar and bsdtar pad archives to 20 blocks; so do we, so our output looks familiar.
const RECORD: u64 = 20 * BLOCK as u64;

pub struct Writer<W> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Appends one entry. For regular files exactly `entry.size` bytes are taken from `data`;
    /// a source that is shorter or longer (a file changed while we packed it) is an error rather
    /// than a silently corrupt archive.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let mut entry_size = entry.size;
        if !entry.kind.has_data() {
            entry_size = 0;
        }
        let head = if entry_size == entry.size {
            header::encode(entry)
        } else {
            header::encode(&Entry {
                size: 0,
                ..entry.clone()
            })
        };
        self.put(&head)?;
        if entry_size == 0 {
            return Ok(());
        }
        let mut left = entry_size;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = match data.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} is shorter than its recorded size {} (changed while being packed?)",
                            String::from_utf8_lossy(&entry.path),
                            entry_size
                        ),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        if matches!(data.read(&mut probe), Ok(n) if n > 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is longer than its recorded size {} (changed while being packed?)",
                    String::from_utf8_lossy(&entry.path),
                    entry_size
                ),
            ));
        }
        let pad = header::padding(entry_size) as usize;
        self.put(&[0u8; BLOCK][..pad])?;
        Ok(())
    }

    /// Appends an entry without data (directories, symlinks, hard links, devices).
    pub fn append_meta(&mut self, entry: &Entry) -> io::Result<()> {
        debug_assert!(entry.kind != Kind::Regular || entry.size == 0);
        self.append(entry, &mut io::empty())
    }

    /// Writes the end-of-archive marker (two zero blocks), pads to a full record and returns
    /// the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; 2 * BLOCK])?;
        let pad = (RECORD - self.written % RECORD) % RECORD;
        self.put(&vec![0u8; pad as usize])?;
        self.out.flush()?;
        Ok(self.out)
    }
}
