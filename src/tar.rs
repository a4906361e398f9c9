//! The tar format: [`header`] (ustar, GNU and PAX records, decoded by libarchive's rules),
//! a bounded streaming [`reader`], a deterministic [`writer`], and [`decompress`]ion. It uses
//! no other module of ours: the installer and the image builder both sit on top of it.
//!
//! Implemented here rather than with the `tar` crate: we need byte-for-byte deterministic
//! output, a streaming reader whose data slices the installer can `write` directly, limits a
//! hostile tarball cannot get around (README "Limits"), and our own safe extraction anyway.

pub mod decompress;
pub mod header;
pub mod reader;
pub mod writer;
