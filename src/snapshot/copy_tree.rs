//! A faithful tree copy (contents, symlinks, device nodes, fifos, hardlinks, owner, mode,
//! xattrs, mtimes) for the native snapshotter, which also applies overlay-form diffs. Both
//! trees are the snapshotter's own: every step checks what is at the destination without
//! following a symlink, so a link in an earlier layer is replaced, never written through.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

const OPAQUE: &str = "trusted.overlay.opaque";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Copy whiteout devices and overlay xattrs as they are.
    Copy,
    /// Interpret them: a 0:0 character device deletes, an opaque directory replaces.
    Apply,
}

pub fn copy_tree(src: &Path, dst: &Path, w: Whiteouts) -> Result<()> {
    let mut links = HashMap::new();
    let m = src
        .symlink_metadata()
        .with_context(|| format!("stat {}", src.display()))?;
    if !m.is_dir() {
        bail!("copy {}: not a directory", src.display());
    }
    ensure_dir(dst)?;
    copy_dir(src, dst, w, &mut links)?;
    copy_meta(src, dst, &m, w)
}

fn ensure_dir(d: &Path) -> Result<()> {
    match d.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            std::fs::remove_file(d)?;
            std::fs::create_dir(d).with_context(|| format!("mkdir {}", d.display()))
        }
        Err(_) => std::fs::create_dir(d).with_context(|| format!("mkdir {}", d.display())),
    }
}

fn remove_any(p: &Path) -> Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => return Ok(()),
    }
    .with_context(|| format!("remove {}", p.display()))
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    w: Whiteouts,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("read {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let (s, d) = (src.join(&name), dst.join(&name));
        let m = s.symlink_metadata()?;
        let ft = m.file_type();
        if w == Whiteouts::Apply && ft.is_char_device() && m.rdev() == 0 {
            remove_any(&d)?;
            continue;
        }
        if ft.is_dir() {
            if w == Whiteouts::Apply && get_xattr(&s, OPAQUE).as_deref() == Some(b"y") {
                remove_any(&d)?;
            }
            ensure_dir(&d)?;
            copy_dir(&s, &d, w, links)?;
            copy_meta(&s, &d, &m, w)?;
            continue;
        }
        remove_any(&d)?;
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                std::fs::hard_link(first, &d).with_context(|| format!("link {}", d.display()))?;
                continue;
            }
            links.insert((m.dev(), m.ino()), d.clone());
        }
        if ft.is_file() {
            std::fs::copy(&s, &d).with_context(|| format!("copy {}", s.display()))?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)
                .with_context(|| format!("symlink {}", d.display()))?;
        } else {
            let kind = SFlag::from_bits_truncate(m.mode() & libc::S_IFMT);
            mknod(
                &d,
                kind,
                Mode::from_bits_truncate(m.mode() & 0o7777),
                m.rdev(),
            )
            .with_context(|| format!("mknod {}", d.display()))?;
        }
        copy_meta(&s, &d, &m, w)?;
    }
    Ok(())
}

fn copy_meta(s: &Path, d: &Path, m: &std::fs::Metadata, w: Whiteouts) -> Result<()> {
    std::os::unix::fs::lchown(d, Some(m.uid()), Some(m.gid()))
        .with_context(|| format!("chown {}", d.display()))?;
    if !m.file_type().is_symlink() {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .with_context(|| format!("chmod {}", d.display()))?;
    }
    for name in list_xattrs(s) {
        if w == Whiteouts::Apply && name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(v) = get_xattr(s, &String::from_utf8_lossy(name.as_bytes())) {
            set_xattr(d, name.as_bytes(), &v)?;
        }
    }
    let at = TimeSpec::new(m.atime(), m.atime_nsec());
    let mt = TimeSpec::new(m.mtime(), m.mtime_nsec());
    utimensat(None, d, &at, &mt, UtimensatFlags::NoFollowSymlink)
        .with_context(|| format!("set times of {}", d.display()))?;
    Ok(())
}

fn cpath(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

fn list_xattrs(p: &Path) -> Vec<CString> {
    let Some(c) = cpath(p) else { return Vec::new() };
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: the path is NUL-terminated and buf is a live writable buffer of its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| CString::new(s).ok())
        .collect()
}

fn get_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = cpath(p)?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: both strings are NUL-terminated and buf is a live writable buffer of its length.
    let len =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(buf)
}

fn set_xattr(p: &Path, name: &[u8], v: &[u8]) -> Result<()> {
    let c = cpath(p).context("path with NUL")?;
    let n = CString::new(name).context("xattr name with NUL")?;
    // SAFETY: both strings are NUL-terminated; value pointer and length describe a live slice.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "set xattr {} on {}",
                OsStr::from_bytes(name).to_string_lossy(),
                p.display()
            )
        });
    }
    Ok(())
}
