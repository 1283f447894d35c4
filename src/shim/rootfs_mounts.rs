//! The rootfs mounts containerd sends with Create (an overlay of snapshot layers, or a bind
//! of a directory), mounted in order onto `<bundle>/rootfs` by [`crate::linux::mount`] and
//! unmounted at Delete.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim_protos::api::Mount;

use crate::linux::mount;

/// Mounts `mounts` onto `<bundle>/rootfs`; returns the rootfs path. On failure what was
/// mounted is unmounted again.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<PathBuf> {
    let rootfs = bundle.join("rootfs");
    if mounts.is_empty() {
        return Ok(rootfs);
    }
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
    mount::mount_all(&rootfs, &list).context("mount rootfs")?;
    Ok(rootfs)
}

/// Unmounts everything mounted on `<bundle>/rootfs` (lazily, all layers).
pub fn unmount_rootfs(bundle: &Path) {
    mount::unmount_all(&bundle.join("rootfs"));
}
