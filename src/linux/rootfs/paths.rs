//! Paths inside a container root. Every lookup treats the root as "/": a symlink or ".." in
//! the image never leads out of it. Resolution in user space gives clean paths; the final
//! opens use openat2(RESOLVE_IN_ROOT) or walk component by component refusing symlinks, so
//! even a path changed behind our back cannot escape.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Symlinks followed in one resolution before giving up (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 255;

/// Resolve `unsafe_path` inside `root`: symlinks (absolute ones relative to `root`) and ".."
/// are resolved as if `root` were "/". Components that do not exist are kept as written.
/// The result is `root` joined with a path free of "." , ".." and existing symlinks.
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    Ok(root.join(resolve_relative(root, unsafe_path)?))
}

/// As [`resolve_in_root`], but returns the path relative to `root` ("" for the root itself).
pub fn resolve_relative(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: VecDeque<OsString> = components(unsafe_path).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    bail!(
                        "resolve {} in {}: too many levels of symbolic links",
                        unsafe_path.display(),
                        root.display()
                    );
                }
                let target = std::fs::read_link(&full)
                    .with_context(|| format!("readlink {}", full.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(c);
                }
            }
            Ok(_) => resolved = candidate,
            Err(e)
                if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                resolved = candidate
            }
            Err(e) => return Err(e).with_context(|| format!("lstat {}", full.display())),
        }
    }
    Ok(resolved)
}

/// The normal and ".." components of a path; "/" and "." are dropped.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// An open container root, the anchor of every lookup inside it.
pub struct RootDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl RootDir {
    /// Open `path` (a directory on the host) as a root.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = open_raw(
            None,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            ResolveFlag::empty(),
        )
        .with_context(|| format!("open rootfs {}", path.display()))?;
        Ok(RootDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The host path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` resolved inside the root, relative to it.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf> {
        resolve_relative(&self.path, path)
    }

    /// Open an existing `path` (O_PATH) with every lookup confined to the root. Each call sees
    /// the mounts made so far, so reopen after mounting to reach the new mount.
    pub fn open_path(&self, path: &Path) -> nix::Result<OwnedFd> {
        open_raw(
            Some(self.fd.as_fd()),
            &relative(path),
            OFlag::O_PATH,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Open an existing directory `path` for reading, lookups confined to the root.
    pub fn open_dir(&self, path: &Path) -> nix::Result<OwnedFd> {
        open_raw(
            Some(self.fd.as_fd()),
            &relative(path),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Create the directory `path` and its parents inside the root (mode 0755 before umask),
    /// and return it opened O_PATH.
    pub fn mkdir_all(&self, path: &Path) -> Result<OwnedFd> {
        let rel = self.resolve(path)?;
        let mut dir = self.open_path(Path::new("")).context("reopen rootfs")?;
        for part in rel.components() {
            let name = part.as_os_str();
            match nix::sys::stat::mkdirat(
                Some(dir.as_raw_fd()),
                name,
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("mkdir {} in {}", path.display(), self.path.display())
                    })
                }
            }
            dir = open_component(dir.as_fd(), name, OFlag::O_DIRECTORY)
                .with_context(|| format!("open {} in {}", path.display(), self.path.display()))?;
        }
        Ok(dir)
    }

    /// Make sure a non-directory `path` exists inside the root (an empty file, mode 0755 as
    /// runc makes it, when nothing is there) and return it opened O_PATH.
    pub fn create_file(&self, path: &Path) -> Result<OwnedFd> {
        if let Ok(fd) = self.open_path(path) {
            return Ok(fd);
        }
        let rel = self.resolve(path)?;
        let Some(name) = rel.file_name() else {
            bail!("cannot create the root itself as a file");
        };
        let parent = self.mkdir_all(rel.parent().unwrap_or(Path::new("")))?;
        let created = nix::fcntl::openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o755),
        );
        match created {
            // SAFETY: openat returned a new fd that nothing else owns.
            Ok(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::EISDIR) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("create {} in {}", path.display(), self.path.display())
                })
            }
        }
        open_component(parent.as_fd(), name, OFlag::empty())
            .with_context(|| format!("open {} in {}", path.display(), self.path.display()))
    }
}

/// A path made relative (leading "/" dropped), so openat2 reads it against the dirfd.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// Open one name in `dir` without following a symlink of any kind.
fn open_component(dir: BorrowedFd<'_>, name: &OsStr, extra: OFlag) -> nix::Result<OwnedFd> {
    open_raw(
        Some(dir),
        Path::new(name),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | extra,
        ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
    )
}

fn open_raw(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: OFlag,
    resolve: ResolveFlag,
) -> nix::Result<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve);
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let fd = openat2(dirfd, path, how)?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tempdir(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ocibox-paths-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let t = tempdir("resolve");
        let r = &t.0;
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        symlink("/etc", r.join("etclink")).unwrap();
        symlink("../../../../..", r.join("a/up")).unwrap();
        symlink("b", r.join("a/rel")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/etclink/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/a/up/etc")).unwrap(),
            r.join("etc")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("../../x")).unwrap(),
            r.join("x")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/a/rel/c")).unwrap(),
            r.join("a/b/c")
        );
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, Path::new("/loop")).is_err());
    }

    #[test]
    fn mkdir_all_and_create_file_follow_links_inside() {
        let t = tempdir("mkdir");
        let r = &t.0;
        symlink("/etc", r.join("etclink")).unwrap();
        let root = RootDir::open(r).unwrap();
        root.mkdir_all(Path::new("/etclink/sub/dir")).unwrap();
        assert!(r.join("etc/sub/dir").is_dir());
        root.create_file(Path::new("/etclink/f")).unwrap();
        assert!(r.join("etc/f").is_file());
        // A file in the way of a directory is an error, not a surprise elsewhere.
        assert!(root.mkdir_all(Path::new("/etc/f/x")).is_err());
        let _ = root.open_path(Path::new("/etclink/sub")).unwrap();
    }
}
