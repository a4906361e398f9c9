//! Opening a (compressed) tarball for reading: format detection, and a two-thread pipeline in
//! which one thread inflates while the caller writes files, the way `tar -xzf` runs `gzip -d`
//! in a second process. Without it extraction would be bounded by inflate + syscalls in series.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use flate2::bufread::MultiGzDecoder;

const CHUNK: usize = 1 << 20;

/// How a tarball is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    None,
}

/// Decides the compression from the first bytes of a file.
pub(crate) fn detect(head: &[u8]) -> io::Result<Compression> {
    let unsupported = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}-compressed tarballs are not supported; use gzip"),
        )
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Compression::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(unsupported("xz"))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(unsupported("zstd"))
    } else if head.starts_with(b"BZh") {
        Err(unsupported("bzip2"))
    } else {
        Ok(Compression::None)
    }
}

fn sniff(file: &mut File) -> io::Result<Compression> {
    use std::io::{Seek, SeekFrom};
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    detect(&head[..n])
}

/// Opens a tarball for single-threaded reading (verification, scanning).
pub fn open(mut file: File) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(match sniff(&mut file)? {
        Compression::Gzip => Box::new(BufReader::with_capacity(
            CHUNK,
            MultiGzDecoder::new(BufReader::with_capacity(CHUNK, file)),
        )),
        Compression::None => Box::new(BufReader::with_capacity(CHUNK, file)),
    })
}

type Chunk = io::Result<Vec<u8>>;

/// The reading end of the decompression thread: a `BufRead` over the inflated stream.
pub(crate) struct Threaded {
    rx: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    _worker: thread::JoinHandle<()>,
}

fn pump(mut source: Box<dyn Read + Send>, tx: SyncSender<Chunk>, recycled: Receiver<Vec<u8>>) {
    loop {
        let mut buf = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let result = loop {
            match source.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        let end = filled < CHUNK;
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return; // the reader is gone
        }
        match result {
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
            Ok(()) if end => return,
            Ok(()) => {}
        }
    }
}

/// Starts inflating `file` on a second thread.
pub(crate) fn open_threaded(mut file: File) -> io::Result<Threaded> {
    let source: Box<dyn Read + Send> = match sniff(&mut file)? {
        Compression::Gzip => Box::new(MultiGzDecoder::new(BufReader::with_capacity(CHUNK, file))),
        Compression::None => Box::new(file),
    };
    // Four chunks in flight: enough to ride out bursts of small files on either side.
    let (tx, rx) = mpsc::sync_channel(4);
    let (recycle, recycled) = mpsc::sync_channel(8);
    let worker = thread::Builder::new()
        .name("inflate".into())
        .spawn(move || pump(source, tx, recycled))?;
    Ok(Threaded {
        rx,
        recycle,
        current: Vec::new(),
        pos: 0,
        _worker: worker,
    })
}

impl Read for Threaded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Threaded {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.current.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let old = std::mem::replace(&mut self.current, next);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvError) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(detect(b"./etc/").unwrap(), Compression::None);
        assert!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]).is_err());
        assert!(detect(&[0x28, 0xb5, 0x2f, 0xfd]).is_err());
    }
}
