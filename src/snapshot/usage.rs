//! Disk usage of a snapshot directory as containerd counts it (fs.DiskUsage): allocated
//! blocks × 512 and inodes, each hardlinked inode once; not crossing into mounts.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result};
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub size: u64,
    pub inodes: u64,
}

/// Walked through directory fds (`fstatat` of each name in its open parent), not by full
/// paths: a layer's tree is thousands of entries deep below a long root, and a path lookup
/// per entry walked every component again.
pub fn disk_usage(root: &Path) -> Result<Usage> {
    let top = root
        .symlink_metadata()
        .with_context(|| format!("stat {}", root.display()))?;
    let mut seen = HashSet::new();
    let mut u = Usage::default();
    seen.insert((top.dev(), top.ino()));
    u.size += top.blocks() * 512;
    u.inodes += 1;
    // Below the root nothing is followed: a symlink is counted, never walked into.
    let open = |parent: Option<RawFd>, name: &Path| {
        let nofollow = match parent {
            Some(_) => OFlag::O_NOFOLLOW,
            None => OFlag::empty(),
        };
        Dir::openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | nofollow,
            Mode::empty(),
        )
    };
    // Directories still to read: their parent (kept open while a child is pending) and
    // their path (for messages; its last name is opened in the parent).
    let mut pending: Vec<(Option<Rc<Dir>>, PathBuf)> = vec![(None, root.to_path_buf())];
    while let Some((parent, path)) = pending.pop() {
        let mut dir = match &parent {
            None => open(None, root),
            Some(p) => open(
                Some(p.as_raw_fd()),
                Path::new(path.file_name().unwrap_or_default()),
            ),
        }
        .with_context(|| format!("read {}", path.display()))?;
        let fd = dir.as_raw_fd();
        let mut subdirs = Vec::new();
        for e in dir.iter() {
            let e = e.with_context(|| format!("read {}", path.display()))?;
            let name = e.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let st = fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .with_context(|| format!("stat {}/{name:?}", path.display()))?;
            if st.st_dev != top.dev() {
                continue;
            }
            if seen.insert((st.st_dev, st.st_ino)) {
                u.size += st.st_blocks as u64 * 512;
                u.inodes += 1;
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                subdirs.push(path.join(std::ffi::OsStr::from_bytes(name.to_bytes())));
            }
        }
        let dir = Rc::new(dir);
        pending.extend(subdirs.into_iter().map(|p| (Some(dir.clone()), p)));
    }
    Ok(u)
}
