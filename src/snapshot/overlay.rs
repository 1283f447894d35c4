//! The overlayfs driver's mounts, as containerd's overlay snapshotter returns them: no
//! parent → a bind of the snapshot's own `fs` (rw, or ro for a view); a view of one layer →
//! a read-only bind of that layer; otherwise an overlay with the parents' `fs` dirs as
//! `lowerdir` (nearest first) and, for an active snapshot, its own `fs`/`work` as
//! `upperdir`/`workdir`.

use std::path::{Path, PathBuf};

use super::snapshotter::Kind;
use crate::linux::mount::Mount;

/// Whether the kernel's overlay has the `index` feature (then containerd mounts with
/// `index=off`, which lets the same lowers be mounted by many snapshots).
pub fn supports_index() -> bool {
    Path::new("/sys/module/overlay/parameters/index").exists()
}

fn bind(source: &Path, ro: bool) -> Mount {
    Mount {
        fs_type: "bind".into(),
        source: source.display().to_string(),
        options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
    }
}

pub fn mounts(kind: Kind, snapshot_dir: &Path, lowers: &[PathBuf], index_off: bool) -> Vec<Mount> {
    if lowers.is_empty() {
        return vec![bind(&snapshot_dir.join("fs"), kind == Kind::View)];
    }
    let mut options = Vec::new();
    if index_off {
        options.push("index=off".to_string());
    }
    if kind == Kind::Active {
        options.push(format!("workdir={}", snapshot_dir.join("work").display()));
        options.push(format!("upperdir={}", snapshot_dir.join("fs").display()));
    } else if lowers.len() == 1 {
        return vec![bind(&lowers[0], true)];
    }
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    options.push(format!("lowerdir={}", lower.join(":")));
    vec![Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        options,
    }]
}
