//! The last touches, after the pivot: readonly paths, masked paths, a read-only /dev when the
//! spec asks, and the read-only root. Paths here are inside the container (its "/").

use std::path::Path;

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::dev_null::{open_in_container, MaskSource};
use super::sys;
use crate::linux::procfs;

/// Bind `path` onto itself and remount it read-only, keeping nosuid/nodev/noexec. A path that
/// does not exist is skipped. The path is opened inside the root without following its last
/// component, and the bind and remount go through that descriptor.
pub fn readonly_path(path: &Path) -> Result<()> {
    let target = match open_in_container(path, OFlag::empty()) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.context("open")?,
    };
    let proc = procfs::get()?;
    proc.with_fd_dir(|| {
        let name = procfs::fd_name(target.as_fd());
        sys::mount(Some(&name), &name, None, libc::MS_BIND | libc::MS_REC, None).context("bind")
    })?;
    // The bind is on top now: reopen to reach it.
    let bound = open_in_container(path, OFlag::empty()).context("reopen")?;
    proc.with_fd_dir(|| {
        let name = procfs::fd_name(bound.as_fd());
        let keep = sys::locked_flags(&name)? & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        sys::mount(
            None,
            &name,
            None,
            keep | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
        .context("remount read-only")
    })
}

/// Hide `path`: the verified /dev/null over a file, an empty read-only tmpfs over a
/// directory. A path that does not exist is skipped. The target is opened inside the root
/// without following its last component; both mounts go onto that descriptor.
pub fn mask_path(path: &Path, null: &mut MaskSource) -> Result<()> {
    let target = match open_in_container(path, OFlag::empty()) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.context("open")?,
    };
    let st = nix::sys::stat::fstat(target.as_raw_fd()).context("fstat")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return null.cover(target.as_fd()).context("bind /dev/null");
    }
    procfs::get()?.with_fd_dir(|| {
        sys::mount(
            Some(Path::new("tmpfs")),
            &procfs::fd_name(target.as_fd()),
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        )
        .context("mount read-only tmpfs")
    })
}

/// Remount an existing mount read-only, keeping its flags (runc retries while EBUSY).
pub fn remount_readonly(path: &Path, flags: libc::c_ulong) -> Result<()> {
    let flags = flags & !libc::MS_REC;
    for _ in 0..5 {
        match sys::mount(
            None,
            path,
            None,
            flags | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        ) {
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(100)),
            r => return r.context("remount read-only"),
        }
    }
    anyhow::bail!("remount read-only: still busy after 5 tries")
}

/// The root read-only; a refused plain remount is retried keeping the locked flags.
pub fn set_root_readonly() -> Result<()> {
    let root = Path::new("/");
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    match sys::mount(None, root, None, flags, None) {
        Ok(()) => Ok(()),
        Err(_) => {
            let locked = sys::locked_flags(root)?;
            sys::mount(None, root, None, flags | locked, None).context("remount / read-only")
        }
    }
}
