//! Paths inside a container's rootfs: resolved as if the rootfs were `/`, so a symlink or
//! `..` in the image never leads outside it; then checked again through the opened
//! descriptor before anything is mounted on it (the image could race us).

use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before giving up, like the kernel's limit.
const MAX_SYMLINKS: usize = 255;

/// Resolve `unsafe_path` inside `root`. The result is `root` joined with a path whose
/// every existing component is a real (non-symlink) entry; the rest may not exist yet.
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    bail!(
                        "too many symlinks resolving {} in {}",
                        unsafe_path.display(),
                        root.display()
                    );
                }
                let target = std::fs::read_link(&candidate)
                    .with_context(|| format!("readlink {}", candidate.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Create every missing directory of `path` (already resolved inside `root`), each one
/// resolved again so a symlink created meanwhile cannot redirect us.
pub fn mkdir_all_in_root(root: &Path, path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        if let Component::Normal(s) = c {
            cur = resolve_in_root(root, &cur.strip_prefix(root).unwrap_or(&cur).join(s))?;
            match std::fs::DirBuilder::new().mode(mode).create(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !cur.is_dir() {
                        bail!("{} exists and is not a directory", cur.display());
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("mkdir {}", cur.display())),
            }
        }
    }
    Ok(())
}

/// An O_PATH handle on a mount target, verified to lie inside `root`. Mount through
/// [`Target::proc_path`] so the kernel uses exactly the object we checked.
pub struct Target {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl Target {
    pub fn open(root: &Path, path: &Path) -> Result<Target> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open mount target {}", path.display()))?;
        // SAFETY: open returned a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .context("readlink of the mount target's descriptor")?;
        if real != root && !real.starts_with(root) {
            bail!(
                "mount target {} resolves to {} outside the rootfs {}",
                path.display(),
                real.display(),
                root.display()
            );
        }
        Ok(Target {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let root = std::env::temp_dir().join(format!("ocibox-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(
            resolve_in_root(&root, Path::new("/abs/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(&root, Path::new("/a/b/up/x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(&root, Path::new("../../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(&root, Path::new("/a/rel/c")).unwrap(),
            root.join("a/b/c")
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(&root, Path::new("/loop")).is_err());
        mkdir_all_in_root(
            &root,
            &resolve_in_root(&root, Path::new("/abs/new/dir")).unwrap(),
            0o755,
        )
        .unwrap();
        assert!(root.join("etc/new/dir").is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
