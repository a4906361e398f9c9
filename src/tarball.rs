//! Distribution tarballs: the reproducible root filesystem tarball (`build`), the
//! hard-link-free installer tarball around it (`image`), and a verifier that checks a tarball
//! the way `wsl --import` and WSL's first start would (`verify`). The format itself is
//! [`crate::tar`]; the layout and safe extraction are the installer's.

#[cfg(feature = "bench")]
pub mod bench;
pub mod build;
pub mod cli;
pub mod ico;
pub mod image;
pub mod index;
pub(crate) mod manifest;
pub(crate) mod rootfs;
pub mod verify;
