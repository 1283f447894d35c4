//! A directory that entries are written into, with every lookup confined to it: a path is
//! split into names, each opened relative to its parent's fd with `O_NOFOLLOW`, so a
//! symlink (made by an earlier entry or already there) is never followed, and `..` is
//! refused before any lookup. Nothing here takes a path string to the kernel whole.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// An entry path made safe: its normal components, none of them "." or "..". The empty
/// path is the target directory itself.
pub fn clean_path(raw: &[u8]) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => bail!(
                "path {:?} escapes the target: \"..\" is not allowed",
                String::from_utf8_lossy(raw)
            ),
            p => out.push(OsStr::from_bytes(p)),
        }
    }
    Ok(out)
}

/// Directories [`SafeDir`] keeps open at most (O_PATH fds; the cache starts over when full).
const CACHED_DIRS: usize = 256;

pub struct SafeDir {
    root: OwnedFd,
    path: PathBuf,
    /// Directories [`SafeDir::parent_of`] walked to, by their paths: an entry's parent, or
    /// its nearest ancestor, is usually open already (a layer's tar holds a directory's
    /// entries together, but comes back to a directory after its subdirectories), so a
    /// lookup walks from there, not from the root. Forgotten whenever a directory is removed
    /// ([`SafeDir::forget_cached`]), as it may be one of them or above them.
    dirs: RefCell<HashMap<PathBuf, Arc<OwnedFd>>>,
}

impl SafeDir {
    pub fn open(path: &Path) -> Result<SafeDir> {
        let fd = openat(
            None,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open {}", path.display()))?;
        Ok(SafeDir {
            // SAFETY: openat returned a new fd that nothing else owns.
            root: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
            dirs: RefCell::new(HashMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds `rel` (a [`clean_path`]) and its last name. Missing parents
    /// are made (mode 0755) when `create` is set. A parent that is a symlink or not a
    /// directory is an error: entries are never written through a link.
    pub fn parent_of(&self, rel: &Path, create: bool) -> Result<(Arc<OwnedFd>, OsString)> {
        let Some(name) = rel.file_name() else {
            bail!("the target directory itself has no parent");
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        if let Some(fd) = self.dirs.borrow().get(parent) {
            return Ok((fd.clone(), name.to_os_string()));
        }
        // Walk from the nearest open ancestor (the root at worst), keeping each level.
        let open = {
            let dirs = self.dirs.borrow();
            parent
                .ancestors()
                .skip(1)
                .find_map(|a| dirs.get(a).map(|fd| (fd.clone(), a.to_path_buf())))
        };
        let (mut dir, mut at) = match open {
            Some(found) => found,
            None => (Arc::new(dup(self.root.as_raw_fd())?), PathBuf::new()),
        };
        let rest = parent.strip_prefix(&at).unwrap_or(parent).to_path_buf();
        for part in rest.iter() {
            dir = Arc::new(self.step(&dir, part, create, rel)?);
            at.push(part);
            self.keep(&at, &dir);
        }
        if rest.as_os_str().is_empty() {
            // The root itself.
            self.keep(&at, &dir);
        }
        Ok((dir, name.to_os_string()))
    }

    fn keep(&self, path: &Path, fd: &Arc<OwnedFd>) {
        let mut dirs = self.dirs.borrow_mut();
        if dirs.len() >= CACHED_DIRS {
            dirs.clear();
        }
        dirs.insert(path.to_path_buf(), fd.clone());
    }

    /// Drop the cached directories (call before removing any directory).
    pub fn forget_cached(&self) {
        self.dirs.borrow_mut().clear();
    }

    /// The directory `rel` itself (the target for ""), opened O_PATH.
    pub fn dir(&self, rel: &Path, create: bool) -> Result<OwnedFd> {
        let mut dir = dup(self.root.as_raw_fd())?;
        for part in rel.iter() {
            dir = self.step(&dir, part, create, rel)?;
        }
        Ok(dir)
    }

    fn step(&self, dir: &OwnedFd, part: &OsStr, create: bool, rel: &Path) -> Result<OwnedFd> {
        let open = || {
            openat(
                Some(dir.as_raw_fd()),
                part,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match open() {
            Err(Errno::ENOENT) if create => {
                match mkdirat(Some(dir.as_raw_fd()), part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("mkdir parent of {}", rel.display()))
                    }
                }
                open()
            }
            r => r,
        };
        match fd {
            // SAFETY: openat returned a new fd that nothing else owns.
            Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                let link = is_symlink(dir.as_raw_fd(), part);
                bail!(
                    "refusing to write {} in {}: {:?} is {}",
                    rel.display(),
                    self.path.display(),
                    part,
                    if link { "a symlink" } else { "not a directory" }
                )
            }
            Err(e) => Err(e).with_context(|| format!("open parent of {}", rel.display())),
        }
    }
}

fn dup(fd: RawFd) -> Result<OwnedFd> {
    let new = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0)).context("dup")?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// What is at `name` in `dir` (not following a symlink), if anything.
pub fn kind_at(dir: RawFd, name: &OsStr) -> Result<Option<SFlag>> {
    match fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("lstat {name:?}")),
    }
}

fn is_symlink(dir: RawFd, name: &OsStr) -> bool {
    matches!(kind_at(dir, name), Ok(Some(SFlag::S_IFLNK)))
}

/// Remove whatever is at `name` in `dir`, a directory with everything below it (never
/// following a symlink), so a later entry replaces an earlier one as tar does.
pub fn remove_at(dir: RawFd, name: &OsStr) -> Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => {
            // std's remove_dir_all opens every level with O_NOFOLLOW; /proc/self/fd/N
            // names the (already confined) parent itself.
            let p = proc_path(dir, name);
            std::fs::remove_dir_all(&p).with_context(|| format!("remove {name:?}"))
        }
        Some(_) => unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("remove {name:?}")),
    }
}

/// `/proc/self/fd/<dir>/<name>`: a path whose only followed link is the fd's, for the
/// calls that have no *at form (lsetxattr).
pub fn proc_path(dir: RawFd, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{dir}"));
    p.push(name);
    p
}

/// Set an extended attribute on `name` in `dir` without following a final symlink.
pub fn set_xattr(dir: RawFd, name: &OsStr, key: &[u8], value: &[u8]) -> Result<()> {
    let path = CString::new(proc_path(dir, name).as_os_str().as_bytes())?;
    let key_c = CString::new(key).context("xattr name with a NUL byte")?;
    // SAFETY: both strings are NUL-terminated and the value pointer/length describe a live
    // slice; lsetxattr only reads them.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set xattr {} on {name:?}", String::from_utf8_lossy(key)));
    }
    Ok(())
}

/// Set an extended attribute on an open file (`name` is for the error only).
pub fn set_xattr_fd(fd: RawFd, name: &OsStr, key: &[u8], value: &[u8]) -> Result<()> {
    let key_c = CString::new(key).context("xattr name with a NUL byte")?;
    // SAFETY: the name is NUL-terminated and the value pointer/length describe a live
    // slice; fsetxattr only reads them.
    let rc = unsafe { libc::fsetxattr(fd, key_c.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set xattr {} on {name:?}", String::from_utf8_lossy(key)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(b"./a//b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(
            clean_path(b"/etc/passwd").unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean_path(b"./").unwrap(), PathBuf::new());
        assert!(clean_path(b"../x").is_err());
        assert!(clean_path(b"a/../../x").is_err());
    }
}
