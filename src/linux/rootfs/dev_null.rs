//! The /dev/null that `maskedPaths` are covered with: the real null device (character
//! device 1:3, checked by fstat), never whatever the rootfs has at /dev/null. With a rootfs
//! whose dev/null is a symlink to /proc/sys/kernel/core_pattern (and no tmpfs on /dev), a
//! bind of "/dev/null" would bind that proc file over every masked path, writable
//! (CVE-2025-31133).
//!
//! Before pivot_root the host's /dev/null is cloned as a detached mount (open_tree
//! OPEN_TREE_CLONE): the clone is a mount of its own, so it survives the old root being
//! detached. The first masked file gets it by move_mount (descriptor onto descriptor); the
//! next ones bind it from there. Without open_tree (kernels before 5.2, or refused) the
//! container's own /dev/null is used only if it passes the same check.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;

use super::sys;
use crate::linux::procfs;

/// Fail unless `fd` is the null character device.
pub fn verify(fd: BorrowedFd<'_>) -> Result<()> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("fstat /dev/null")?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        bail!("/dev/null is not the null device (character device 1:3)");
    }
    Ok(())
}

/// The host's /dev/null as a detached mount, verified; None where open_tree is missing or
/// refused (the fallback then checks the container's).
pub fn clone_host() -> Result<Option<OwnedFd>> {
    match procfs::open_tree_clone(None, Path::new("/dev/null"), false) {
        Ok(fd) => {
            verify(fd.as_fd()).context("the host's /dev/null")?;
            Ok(Some(fd))
        }
        Err(_) => Ok(None),
    }
}

/// Where masks get their /dev/null from, after pivot_root.
pub struct MaskSource {
    /// The detached clone, until the first masked file takes it.
    detached: Option<OwnedFd>,
    /// A /dev/null mounted in the container (the first mask), bound onto the next ones.
    attached: Option<OwnedFd>,
}

impl MaskSource {
    pub fn new(detached: Option<OwnedFd>) -> MaskSource {
        MaskSource {
            detached,
            attached: None,
        }
    }

    /// Cover the non-directory `target` (an O_PATH descriptor) with /dev/null.
    pub fn cover(&mut self, target: BorrowedFd<'_>) -> Result<()> {
        if let Some(src) = &self.attached {
            return bind_fd(src.as_fd(), target);
        }
        if let Some(tree) = self.detached.take() {
            procfs::move_mount_fds(tree.as_fd(), target).context("move_mount /dev/null")?;
            // The descriptor is the root of that mount, now in this namespace.
            self.attached = Some(tree);
            return Ok(());
        }
        let own = open_in_container(Path::new("/dev/null"), OFlag::empty())
            .context("open the container's /dev/null")?;
        verify(own.as_fd()).context("can't mask paths")?;
        bind_fd(own.as_fd(), target)?;
        self.attached = Some(own);
        Ok(())
    }
}

/// mount(2) bind of descriptor `src` onto descriptor `target`, both named through the
/// verified procfs (no lookup in the container's tree).
pub fn bind_fd(src: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    procfs::get()?.with_fd_dir(|| {
        sys::mount(
            Some(&procfs::fd_name(src)),
            &procfs::fd_name(target),
            None,
            libc::MS_BIND,
            None,
        )
        .context("bind mount")
    })
}

/// Open `path` inside the current root (after pivot_root) O_PATH, symlinks and ".." in the
/// middle resolved inside the root, the last component never followed.
pub fn open_in_container(path: &Path, extra: OFlag) -> nix::Result<OwnedFd> {
    use nix::fcntl::{openat2, OpenHow, ResolveFlag};
    use std::os::fd::FromRawFd;
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open returned a new fd that nothing else owns.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    let rel: std::path::PathBuf = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .collect();
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".").to_path_buf()
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), &rel, how)?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
