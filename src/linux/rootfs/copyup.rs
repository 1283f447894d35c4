//! runc's `tmpcopyup` extension: a tmpfs mounted over a directory of the image starts with a
//! copy of what it covers. The covered directory is read through a descriptor opened before
//! the mount; nothing is followed through a symlink on either side.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};
use nix::unistd::{Gid, Uid};

/// Copy the contents of directory `src` into directory `dst` (both opened O_RDONLY), keeping
/// modes, owners, symlinks and device nodes; then give `dst` the mode and owner of `src`.
pub fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> Result<()> {
    copy_dir(src.as_raw_fd(), dst.as_raw_fd())?;
    let st = nix::sys::stat::fstat(src.as_raw_fd()).context("stat covered directory")?;
    nix::sys::stat::fchmod(
        dst.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .context("chmod tmpfs root")?;
    nix::unistd::fchown(
        dst.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .context("chown tmpfs root")
}

fn open_at(dir: RawFd, name: &CStr, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn copy_dir(src: RawFd, dst: RawFd) -> Result<()> {
    let mut dir = nix::dir::Dir::openat(
        Some(src),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("read covered directory")?;
    for entry in dir.iter() {
        let entry = entry.context("read covered directory")?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        copy_entry(src, dst, name).with_context(|| format!("copy {}", name.to_string_lossy()))?;
    }
    Ok(())
}

fn copy_entry(src: RawFd, dst: RawFd, name: &CStr) -> Result<()> {
    let st = nix::sys::stat::fstatat(Some(src), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let perm = st.st_mode & 0o7777;
    if kind == SFlag::S_IFDIR {
        nix::sys::stat::mkdirat(Some(dst), name, Mode::from_bits_truncate(0o700))?;
        let s = open_at(src, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
        let d = open_at(dst, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
        copy_dir(s.as_raw_fd(), d.as_raw_fd())?;
    } else if kind == SFlag::S_IFREG {
        let mut s = File::from(open_at(src, name, OFlag::O_RDONLY, 0)?);
        let mut d = File::from(open_at(
            dst,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            0o600,
        )?);
        std::io::copy(&mut s, &mut d)?;
    } else if kind == SFlag::S_IFLNK {
        let target = nix::fcntl::readlinkat(Some(src), name)?;
        nix::unistd::symlinkat(target.as_os_str(), Some(dst), name)?;
    } else {
        nix::sys::stat::mknodat(
            Some(dst),
            name,
            kind,
            Mode::from_bits_truncate(perm),
            st.st_rdev,
        )?;
    }
    match nix::unistd::fchownat(
        Some(dst),
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    if kind != SFlag::S_IFLNK {
        nix::sys::stat::fchmodat(
            Some(dst),
            name,
            Mode::from_bits_truncate(perm),
            FchmodatFlags::FollowSymlink, // our own fresh entry, not a link
        )?;
    }
    Ok(())
}
