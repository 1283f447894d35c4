//! The rootfs mounts containerd sends with Create (an overlay of snapshot layers, or a bind
//! of a directory), mounted in order onto `<bundle>/rootfs` by [`crate::linux::mount`] and
//! unmounted at Delete.

use std::path::Path;

use anyhow::{Context, Result};
use containerd_shim_protos::api::Mount;

use crate::linux::mount;

/// Mounts `mounts` onto `<bundle>/rootfs`; returns whether the rootfs directory was made
/// here (so a failed Create removes it). On failure what was mounted is unmounted again
/// and a directory made here removed.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<bool> {
    let rootfs = bundle.join("rootfs");
    if mounts.is_empty() {
        return Ok(false);
    }
    let made_dir = std::fs::symlink_metadata(&rootfs).is_err();
    std::fs::create_dir_all(&rootfs)
        .with_context(|| format!("create rootfs directory {}", rootfs.display()))?;
    let list: Vec<mount::Mount> = mounts
        .iter()
        .map(|m| mount::Mount {
            fs_type: m.type_.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect();
    if let Err(e) = mount::mount_all(&rootfs, &list) {
        if made_dir {
            let _ = std::fs::remove_dir(&rootfs);
        }
        return Err(e).context("mount rootfs");
    }
    Ok(made_dir)
}

/// Unmounts everything mounted on `<bundle>/rootfs` (lazily, all layers).
pub fn unmount_rootfs(bundle: &Path) {
    mount::unmount_all(&bundle.join("rootfs"));
}

/// Undoes [`mount_rootfs`] after a later step of Create failed: unmounts every layer and
/// removes the directory if it was made for them.
pub fn undo_rootfs(bundle: &Path, made_dir: bool) {
    unmount_rootfs(bundle);
    if made_dir {
        let _ = std::fs::remove_dir(bundle.join("rootfs"));
    }
}
