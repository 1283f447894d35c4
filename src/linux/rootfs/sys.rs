//! Thin wrappers over the mount-related syscalls that nix does not cover (or covers awkwardly).

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

/// `mount(2)` with raw flag bits, so flags nix does not name (MS_NOSYMFOLLOW) pass through.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(
        source,
        target,
        fstype,
        MsFlags::from_bits_retain(flags),
        data,
    )
}

/// The magic-link path through which a syscall that only takes paths reaches `fd`.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `struct mount_attr` of mount_setattr(2) (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Apply mount attributes to the mount `fd` refers to and every mount below it.
pub fn mount_setattr_recursive(fd: RawFd, attr_set: u64, attr_clr: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr,
        ..Default::default()
    };
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` lives across the call and
    // its size is passed; the kernel only reads it.
    let res = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(res).map(drop)
}

/// The flags of the mount holding `path` that an unprivileged remount must keep (they are
/// "locked" when the mount came from a more privileged mount namespace), as MS_* bits.
pub fn locked_flags(path: &Path) -> nix::Result<libc::c_ulong> {
    let st = nix::sys::statvfs::statvfs(path)?;
    // ST_* flag values are the MS_* values for these bits.
    let keep = libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NOATIME
        | libc::MS_NODIRATIME
        | libc::MS_RELATIME
        | libc::MS_RDONLY;
    Ok(st.flags().bits() as libc::c_ulong & keep)
}
