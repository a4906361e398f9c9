//! Mount points.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A directory on a different device than its parent is a mount point (enough for the
/// bind and tmpfs mounts asked about here).
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(me), Some(Ok(parent))) => me.dev() != parent.dev(),
        _ => false,
    }
}
