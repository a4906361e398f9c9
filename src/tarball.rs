//! Distribution tarballs: the reproducible root filesystem tarball (`build`), the
//! hard-link-free installer tarball around it (`image`), and a verifier that checks a tarball
//! the way `wsl --import` and WSL's first start would (`verify`). The tar format itself
//! (`header`, `reader`, `writer`) is implemented here rather than with the `tar` crate: we need
//! byte-for-byte deterministic output, a streaming reader whose data slices the installer can
//! `write` directly, and our own safe extraction anyway.

pub mod build;
pub mod cli;
pub mod decompress;
pub mod header;
pub mod ico;
pub mod image;
pub mod index;
pub mod manifest;
pub mod reader;
pub mod rootfs;
pub mod verify;
pub mod writer;
