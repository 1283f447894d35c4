//! Disk usage of a snapshot directory as containerd counts it (fs.DiskUsage): allocated
//! blocks × 512 and inodes, each hardlinked inode once; not crossing into mounts.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub size: u64,
    pub inodes: u64,
}

pub fn disk_usage(root: &Path) -> Result<Usage> {
    let top = root
        .symlink_metadata()
        .with_context(|| format!("stat {}", root.display()))?;
    let mut seen = HashSet::new();
    let mut u = Usage::default();
    let mut stack = vec![root.to_path_buf()];
    seen.insert((top.dev(), top.ino()));
    u.size += top.blocks() * 512;
    u.inodes += 1;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let e = e?;
            let m = e.metadata()?;
            if m.dev() != top.dev() {
                continue;
            }
            if seen.insert((m.dev(), m.ino())) {
                u.size += m.blocks() * 512;
                u.inodes += 1;
            }
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(u)
}
