//! The native driver: every snapshot is a full copy (containerd's
//! `io.containerd.snapshotter.v1.native`, `snapshots/<id>` is the tree itself), mounted by
//! a bind (read-only for a view). For filesystems where overlay cannot stack.

use std::path::Path;

use anyhow::Result;

use super::copy_tree::{copy_tree, Whiteouts};
use super::snapshotter::Kind;
use crate::linux::mount::Mount;

pub fn mounts(kind: Kind, fs: &Path) -> Vec<Mount> {
    vec![Mount {
        fs_type: "bind".into(),
        source: fs.display().to_string(),
        // containerd's native snapshotter orders them so: `rbind` first.
        options: vec![
            "rbind".into(),
            if kind == Kind::View { "ro" } else { "rw" }.into(),
        ],
    }]
}

/// A new snapshot `dst` (not existing yet) as a copy of `parent`.
pub fn copy_snapshot(parent: &Path, dst: &Path) -> Result<()> {
    copy_tree(parent, dst, Whiteouts::Copy)
}

/// Apply a layer unpacked in overlay form (`diff`) onto the full tree `dst`: whiteout
/// devices delete, opaque directories replace, everything else is copied over.
pub fn apply_overlay_diff(diff: &Path, dst: &Path) -> Result<()> {
    copy_tree(diff, dst, Whiteouts::Apply)
}
