//! The last touches, after the pivot: readonly paths, masked paths, a read-only /dev when the
//! spec asks, and the read-only root. Paths here are inside the container (its "/").

use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;

use super::sys;

/// Bind `path` onto itself and remount it read-only, keeping nosuid/nodev/noexec. A path that
/// does not exist is skipped.
pub fn readonly_path(path: &Path) -> Result<()> {
    match sys::mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.context("bind")?,
    }
    let keep = sys::locked_flags(path)? & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    sys::mount(
        Some(path),
        path,
        None,
        keep | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        None,
    )
    .context("remount read-only")
}

/// Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory. A path that
/// does not exist is skipped.
pub fn mask_path(path: &Path) -> Result<()> {
    match sys::mount(
        Some(Path::new("/dev/null")),
        path,
        None,
        libc::MS_BIND,
        None,
    ) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => sys::mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        )
        .context("mount read-only tmpfs"),
        Err(e) => Err(e).context("bind /dev/null"),
    }
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
