//! TODO: tarball
