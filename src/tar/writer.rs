//! Deterministic tar writer, on the `tar` crate's `Builder` and `Header`: the output depends
//! only on the entries and data given, never on the clock, the user database or the process.
//!
//! The crate writes the blocks: numeric fields (octal, GNU base-256 when they do not fit),
//! checksums, PAX extended headers, data padding. Two things stay ours, because the crate's
//! convenience setters would change the archive: paths are stored byte for byte (its
//! `set_path` drops a leading `./` and `.` components, and WSL's own tarballs start every path
//! with `./`), and which fields also get a PAX record is decided here, so a reader that knows
//! only ustar or only PAX gets every value (the crate would store large values in base-256
//! alone).

use std::io::{self, Read, Write};

use super::header::{Entry, Kind, BLOCK};

/// GNU tar and bsdtar pad archives to 20 blocks; so do we, so our output looks familiar.
const RECORD: u64 = 20 * BLOCK as u64;

/// ustar's `name` and `prefix` field sizes.
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;

pub struct Writer<W: Write> {
    builder: tar::Builder<Counted<W>>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            builder: tar::Builder::new(Counted { out, written: 0 }),
        }
    }

    /// Appends one entry. For regular files exactly `entry.size` bytes are taken from `data`;
    /// a source that is shorter or longer (a file changed while we packed it) is an error rather
    /// than a silently corrupt archive.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        // Only regular files carry data; any other kind is written with size 0.
        let dataless;
        let (entry, size) = if entry.kind.has_data() || entry.size == 0 {
            (entry, entry.size)
        } else {
            dataless = Entry {
                size: 0,
                ..entry.clone()
            };
            (&dataless, 0)
        };
        let header = append_pax_then_header(&mut self.builder, entry)?;
        self.builder.append(
            &header,
            Exact {
                data,
                left: size,
                entry,
            },
        )
    }

    /// Appends an entry without data (directories, symlinks, hard links, devices).
    pub fn append_meta(&mut self, entry: &Entry) -> io::Result<()> {
        debug_assert!(entry.kind != Kind::Regular || entry.size == 0);
        self.append(entry, &mut io::empty())
    }

    /// Writes the end-of-archive marker (two zero blocks), pads to a full record and returns
    /// the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        let mut counted = self.builder.into_inner()?;
        let pad = (RECORD - counted.written % RECORD) % RECORD;
        counted.write_all(&vec![0u8; pad as usize])?;
        counted.flush()?;
        Ok(counted.out)
    }
}

/// The header blocks of `entry` as the writer writes them: a PAX extended header (block plus
/// padded records) when a name, size, owner or time does not fit the ustar fields, then the
/// ustar block. Tests build exactly-specified headers with it.
pub fn encode(entry: &Entry) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let header = append_pax_then_header(&mut builder, entry)?;
    let mut out = builder.into_inner()?;
    out.truncate(out.len() - 2 * BLOCK); // the crate's end-of-archive marker
    out.extend_from_slice(header.as_bytes());
    Ok(out)
}

/// Appends `entry`'s PAX extended header, if it needs one, and returns its ustar header.
fn append_pax_then_header<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
) -> io::Result<tar::Header> {
    let (pax, header) = headers(entry)?;
    builder.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))?;
    Ok(header)
}

/// PAX records a value needs, and the ustar header.
type Headers = (Vec<(&'static str, Vec<u8>)>, tar::Header);

fn headers(entry: &Entry) -> io::Result<Headers> {
    let mut pax: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut header = tar::Header::new_ustar();
    let (prefix, name) = match split_ustar(&entry.path) {
        Some(split) => split,
        None => {
            pax.push(("path", entry.path.clone()));
            (&[][..], &entry.path[..entry.path.len().min(NAME_LEN)])
        }
    };
    let ustar = header
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("tar::Header::new_ustar is not ustar"))?;
    ustar.name[..name.len()].copy_from_slice(name);
    ustar.prefix[..prefix.len()].copy_from_slice(prefix);
    let link: &[u8] = if entry.link.len() > NAME_LEN {
        pax.push(("linkpath", entry.link.clone()));
        &entry.link[..NAME_LEN]
    } else {
        &entry.link
    };
    header.set_link_name_literal(link)?;
    header.set_mode(entry.mode & 0o7777);
    for (key, value, digits) in [
        ("size", entry.size, 11),
        ("uid", entry.uid, 7),
        ("gid", entry.gid, 7),
    ] {
        if value >= 1 << (3 * digits) {
            pax.push((key, value.to_string().into_bytes()));
        }
    }
    header.set_size(entry.size);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    let mtime = u64::try_from(entry.mtime).ok().filter(|&t| t < 1 << 33);
    if mtime.is_none() {
        pax.push(("mtime", entry.mtime.to_string().into_bytes()));
    }
    header.set_mtime(mtime.unwrap_or(0));
    header.set_entry_type(tar::EntryType::new(entry.kind.flag()));
    if matches!(entry.kind, Kind::CharDevice | Kind::BlockDevice) {
        // Seven octal digits, which every Linux device number (12-bit major, 20-bit minor)
        // fits; the crate would drop the high digits of a larger one.
        if entry.dev_major >= 1 << 21 || entry.dev_minor >= 1 << 21 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: device number {}:{} does not fit a tar header",
                    String::from_utf8_lossy(&entry.path),
                    entry.dev_major,
                    entry.dev_minor
                ),
            ));
        }
        header.set_device_major(entry.dev_major)?;
        header.set_device_minor(entry.dev_minor)?;
    }
    header.set_cksum();
    Ok((pax, header))
}

/// Splits a path into ustar `(prefix, name)` when it does not fit `name` alone.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME_LEN {
        return Some((&[], path));
    }
    // The split happens at a '/' such that the prefix fits 155 bytes and the rest 100;
    // a trailing slash (directories) belongs to the name part.
    let search_end = path.len().saturating_sub(1);
    (0..search_end)
        .rev()
        .filter(|&i| path[i] == b'/')
        .find_map(|i| {
            let (prefix, name) = (&path[..i], &path[i + 1..]);
            (prefix.len() <= PREFIX_LEN && !name.is_empty() && name.len() <= NAME_LEN)
                .then_some((prefix, name))
        })
}

/// Exactly `left` bytes of an entry's data: a source that ends early or goes on is an error.
struct Exact<'a> {
    data: &'a mut dyn Read,
    left: u64,
    entry: &'a Entry,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let path = || String::from_utf8_lossy(&self.entry.path).into_owned();
        if self.left == 0 {
            if self.entry.size > 0 {
                let mut probe = [0u8; 1];
                if matches!(self.data.read(&mut probe), Ok(n) if n > 0) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is longer than its recorded size {} (changed while being packed?)",
                            path(),
                            self.entry.size
                        ),
                    ));
                }
            }
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.data.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter than its recorded size {} (changed while being packed?)",
                    path(),
                    self.entry.size
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts what goes through, for the record padding.
struct Counted<W> {
    out: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::header::{decode, parse_pax, HeaderError, Pax};
    use super::*;

    /// The records of the PAX extended header that `bytes` (an [`encode`] output) starts with.
    fn pax_of(bytes: &[u8]) -> Pax {
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(&bytes[..BLOCK]);
        let head = decode(&b).unwrap();
        assert_eq!(head.flag, b'x');
        parse_pax(&bytes[BLOCK..BLOCK + head.entry.size as usize]).unwrap()
    }

    fn last_block(bytes: &[u8]) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(&bytes[bytes.len() - BLOCK..]);
        b
    }

    #[test]
    fn roundtrip_short_entry() {
        let mut e = Entry::new(Kind::Regular, b"./etc/passwd".to_vec());
        e.mode = 0o4755;
        e.uid = 1000;
        e.gid = 100;
        e.size = 1234;
        e.mtime = 1;
        let bytes = encode(&e).unwrap();
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(decode(&last_block(&bytes)).unwrap().entry, e);
    }

    #[test]
    fn long_paths_use_prefix_or_pax() {
        let dir = "d".repeat(90);
        let path = format!("./{dir}/{dir}/file");
        let e = Entry::new(Kind::Regular, path.clone().into_bytes());
        let bytes = encode(&e).unwrap();
        assert_eq!(bytes.len(), BLOCK, "splits into prefix + name");
        assert_eq!(
            decode(&last_block(&bytes)).unwrap().entry.path,
            path.as_bytes()
        );

        let long = format!("./{}", "x".repeat(300));
        let mut e = Entry::new(Kind::Symlink, long.clone().into_bytes());
        e.link = "y".repeat(150).into_bytes();
        let bytes = encode(&e).unwrap();
        assert!(bytes.len() > BLOCK);
        let pax = pax_of(&bytes);
        assert_eq!(pax.path.as_deref(), Some(long.as_bytes()));
        assert_eq!(pax.linkpath.as_deref(), Some(e.link.as_slice()));
        let mut main = decode(&last_block(&bytes)).unwrap().entry;
        pax.apply(&mut main);
        assert_eq!(main, e);
    }

    #[test]
    fn values_beyond_ustar_get_pax_records_and_base256() {
        let mut e = Entry::new(Kind::Regular, b"./big".to_vec());
        e.size = 1 << 40;
        e.uid = 1 << 30;
        e.gid = 3 << 21;
        e.mtime = -31_536_000;
        let bytes = encode(&e).unwrap();
        let pax = pax_of(&bytes);
        assert_eq!(
            (pax.size, pax.uid, pax.gid, pax.mtime),
            (
                Some(1 << 40),
                Some(1 << 30),
                Some(3 << 21),
                Some(-31_536_000)
            )
        );
        // The ustar block alone still carries size and owner (base-256); mtime is 0.
        let main = decode(&last_block(&bytes)).unwrap().entry;
        assert_eq!((main.size, main.uid, main.gid), (1 << 40, 1 << 30, 3 << 21));
        let mut whole = main;
        pax.apply(&mut whole);
        assert_eq!(whole, e);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        // Our reader checks every record's length prefix; paths around the points where the
        // prefix gains a digit.
        for n in [200, 250, 290, 295, 296, 297, 990, 995, 996, 1000] {
            let path = format!("./{}", "a".repeat(n));
            let bytes = encode(&Entry::new(Kind::Regular, path.clone().into_bytes())).unwrap();
            let pax = pax_of(&bytes);
            assert_eq!(pax.path.as_deref(), Some(path.as_bytes()), "n = {n}");
        }
    }

    #[test]
    fn bad_checksum_is_reported() {
        let mut b = last_block(&encode(&Entry::new(Kind::Directory, b"./".to_vec())).unwrap());
        b[0] ^= 1;
        assert!(matches!(decode(&b), Err(HeaderError::Checksum { .. })));
    }

    #[test]
    fn devices_roundtrip() {
        let mut e = Entry::new(Kind::CharDevice, b"./dev/null".to_vec());
        e.dev_major = 1;
        e.dev_minor = 3;
        e.mode = 0o666;
        assert_eq!(decode(&last_block(&encode(&e).unwrap())).unwrap().entry, e);
        e.dev_minor = 1 << 21;
        assert!(encode(&e).is_err());
    }

    #[test]
    fn data_of_the_wrong_length_is_an_error() {
        let mut e = Entry::new(Kind::Regular, b"./f".to_vec());
        e.size = 4;
        let mut w = Writer::new(Vec::new());
        let err = w.append(&e, &mut &b"abc"[..]).unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
        let mut w = Writer::new(Vec::new());
        let err = w.append(&e, &mut &b"abcde"[..]).unwrap_err();
        assert!(err.to_string().contains("longer"), "{err}");
        let mut w = Writer::new(Vec::new());
        w.append(&e, &mut &b"abcd"[..]).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() as u64, RECORD);
    }
}
