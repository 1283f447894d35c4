//! Making the rootfs the root: propagation of "/", the rootfs bound onto itself, then
//! pivot_root (runc's pivot_root(".", ".") trick) or, with --no-pivot, MS_MOVE + chroot.

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

use super::sys;
use crate::linux::mountinfo;

/// Set the propagation of "/" (MS_SLAVE|MS_REC unless the spec says otherwise), make the
/// rootfs's parent mount private if shared, and bind the rootfs onto itself so it is a mount
/// point (pivot_root needs one).
pub fn prepare_root(rootfs: &Path, propagation: libc::c_ulong) -> Result<()> {
    sys::mount(None, Path::new("/"), None, propagation, None).context("set propagation of /")?;
    make_parent_private(rootfs)?;
    sys::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .with_context(|| format!("bind rootfs {} onto itself", rootfs.display()))
}

/// pivot_root fails when the parent of the new root is shared, and a shared parent would
/// carry our bind mount to other namespaces.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let infos = mountinfo::read()?;
    let parent = infos
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len());
    if let Some(p) = parent {
        if p.optional.split(' ').any(|o| o.starts_with("shared:")) {
            sys::mount(
                None,
                Path::new(&p.mount_point),
                None,
                libc::MS_PRIVATE,
                None,
            )
            .with_context(|| format!("make {} private", p.mount_point))?;
        }
    }
    Ok(())
}

/// pivot_root(".", ".") with the rootfs as cwd, then detach the old root stacked on top.
pub fn pivot_root(rootfs: &Path) -> Result<()> {
    let old_root = std::fs::File::open("/").context("open /")?;
    let new_root =
        std::fs::File::open(rootfs).with_context(|| format!("open rootfs {}", rootfs.display()))?;
    nix::unistd::fchdir(new_root.as_raw_fd()).context("chdir to rootfs")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    // The old root is now mounted on top of the new one, and "." may be either: go to it
    // explicitly, make it private so the unmount stays here, and detach it.
    nix::unistd::fchdir(old_root.as_raw_fd()).context("chdir to old root")?;
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .context("make old root rslave")?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).context("unmount old root")?;
    nix::unistd::chdir("/").context("chdir /")
}

/// --no-pivot: hide the host's full proc and sysfs mounts, move the rootfs onto "/" and
/// chroot into it.
pub fn move_root(rootfs: &Path) -> Result<()> {
    let rootfs_str = rootfs.to_string_lossy();
    for m in mountinfo::read()? {
        let outside = !Path::new(&m.mount_point).starts_with(rootfs);
        if m.root != "/" || !(m.fs_type == "proc" || m.fs_type == "sysfs") || !outside {
            continue;
        }
        let p = Path::new(&m.mount_point);
        match sys::mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.with_context(|| format!("make {} rslave", m.mount_point))?,
        }
        match nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => {
                sys::mount(Some(Path::new("tmpfs")), p, Some("tmpfs"), 0, None)
                    .with_context(|| format!("cover {}", m.mount_point))?;
            }
            Err(e) => return Err(e).with_context(|| format!("unmount {}", m.mount_point)),
        }
    }
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {rootfs_str}"))?;
    sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
        .context("move rootfs onto /")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")
}

/// No mount namespace of its own: pivot_root would swap the root of the caller's mount
/// namespace, so the process only chroots into the rootfs, as runc does.
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")
}
