//! The state directory `/run/nixos-wsl`: made, or taken back, before anything is put in it.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result};

use crate::paths::STATE_DIR;

/// Makes sure `/run/nixos-wsl` is a real directory owned by root. A symlink there is removed
/// (never followed: it could point anywhere); any other non-directory is renamed aside.
pub(crate) fn prepare_state_dir() -> Result<()> {
    let dir = Path::new(STATE_DIR);
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => {
            if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
                // Someone else could plant handles or logs here: take the directory back.
                std::os::unix::fs::chown(dir, Some(0), Some(0))
                    .with_context(|| format!("taking ownership of {STATE_DIR}"))?;
                std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .with_context(|| format!("fixing permissions of {STATE_DIR}"))?;
            }
            return Ok(());
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            log::warn!("{STATE_DIR} was a symlink; removing it");
            std::fs::remove_file(dir)
                .with_context(|| format!("removing the symlink {STATE_DIR}"))?;
        }
        Ok(_) => {
            let aside = format!("{STATE_DIR}.stale.{}", std::process::id());
            log::warn!("{STATE_DIR} was not a directory; moved it to {aside}");
            std::fs::rename(dir, &aside).with_context(|| format!("moving {STATE_DIR} aside"))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {STATE_DIR}")),
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        // Concurrent first launches race to create it; losing is fine.
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other.with_context(|| format!("creating {STATE_DIR}")),
    }
}
