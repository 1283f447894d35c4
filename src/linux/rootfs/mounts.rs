//! One spec mount onto the rootfs: bind/rbind (with the remount that read-only and the other
//! per-mount flags need), proc and sysfs (never through a symlink), tmpfs, and every other
//! filesystem type; propagation and recursive attributes applied after the mount.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::Mount;

use super::paths::RootDir;
use super::sys::{self, fd_path};
use super::{cgroup, copyup, RootfsOptions};
use crate::linux::mount::options::{self, MountOptions};

/// A spec mount, normalized.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub source: Option<PathBuf>,
    pub destination: PathBuf,
    /// The filesystem type ("none" when the spec gives none).
    pub fs_type: String,
    pub options: MountOptions,
}

impl MountEntry {
    pub fn from_spec(m: &Mount) -> Result<Self> {
        let opts = m.options().as_deref().unwrap_or(&[]);
        Ok(MountEntry {
            source: m.source().clone(),
            destination: m.destination().clone(),
            fs_type: m.typ().clone().unwrap_or_else(|| "none".to_string()),
            options: options::parse(opts)?,
        })
    }

    /// "mount TYPE on DEST in rootfs ROOT", the prefix of every error about this mount.
    pub fn describe(&self, root: &RootDir) -> String {
        let what = if self.options.is_bind() {
            format!(
                "bind {}",
                self.source.as_deref().unwrap_or(Path::new("")).display()
            )
        } else {
            self.fs_type.clone()
        };
        format!(
            "mount {} on {} in rootfs {}",
            what,
            self.destination.display(),
            root.path().display()
        )
    }
}

/// What the mounting code needs besides the mount itself.
pub struct MountContext<'a> {
    pub root: &'a RootDir,
    pub opts: &'a RootfsOptions<'a>,
}

/// Mount one entry into the rootfs.
pub fn mount_entry(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let run = || -> Result<()> {
        if m.options.is_bind() {
            return mount_bind(ctx, m);
        }
        match m.fs_type.as_str() {
            "proc" | "sysfs" => mount_proc_or_sys(ctx, m),
            "cgroup" => cgroup::mount_cgroup(ctx, m),
            "tmpfs" => mount_tmpfs(ctx, m),
            _ => mount_plain(ctx, m),
        }
    };
    run().with_context(|| m.describe(ctx.root))
}

/// The lexical form of `dest` relative to the root ("/a/../b" → "b"), no symlinks followed.
pub fn lexical(dest: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// MS_* flags for the first mount(2); /dev stays writable until finalize (runc does the same,
/// the devices are made in it first).
fn mount_flags(m: &MountEntry) -> libc::c_ulong {
    let mut flags = m.options.flags & !libc::MS_REMOUNT;
    if lexical(&m.destination) == Path::new("dev") {
        flags &= !libc::MS_RDONLY;
    }
    flags
}

fn mount_bind(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let Some(source) = m.source.as_deref() else {
        bail!("a bind mount needs a source");
    };
    let meta = std::fs::metadata(source).with_context(|| format!("stat {}", source.display()))?;
    let rel = ctx.root.resolve(&m.destination)?;
    check_proc_mount(&rel, Some(source))?;
    let target = if meta.is_dir() {
        ctx.root.mkdir_all(&rel)?
    } else {
        ctx.root.create_file(&rel)?
    };
    check_target(target.as_fd(), &rel, Some(meta.is_dir()))?;
    let flags = mount_flags(m);
    sys::mount(
        Some(source),
        &fd_path(target.as_fd()),
        None,
        flags & (libc::MS_BIND | libc::MS_REC),
        None,
    )?;
    // A bind mount takes its per-mount flags only from a remount.
    let extra = flags & !(libc::MS_BIND | libc::MS_REC);
    if extra != 0 {
        remount_bind(ctx.root, &rel, extra).context("remount")?;
    }
    after_mount(ctx.root, &rel, &m.options)
}

/// Remount the bind mount at `rel` with `flags`, keeping the flags the kernel has locked when
/// it refuses to drop them.
pub fn remount_bind(root: &RootDir, rel: &Path, flags: libc::c_ulong) -> Result<()> {
    let fd = root.open_path(rel)?;
    let path = fd_path(fd.as_fd());
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match sys::mount(None, &path, None, base | flags, None) {
        Err(Errno::EPERM) => {
            let locked = sys::locked_flags(&path)?;
            sys::mount(None, &path, None, base | flags | locked, None)?;
        }
        r => r?,
    }
    Ok(())
}

fn mount_proc_or_sys(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let rel = ctx.root.resolve(&m.destination)?;
    // runc's words (callers grep for them): `filesystem "proc" must be mounted on
    // ordinary directory`, for a destination that is a symlink or not a directory.
    let refuse = || {
        anyhow::anyhow!(
            "filesystem {:?} must be mounted on ordinary directory",
            m.fs_type
        )
    };
    if rel != lexical(&m.destination) {
        // The destination passes through a symlink.
        return Err(refuse());
    }
    if let Ok(meta) = std::fs::symlink_metadata(ctx.root.path().join(&rel)) {
        if !meta.is_dir() {
            return Err(refuse());
        }
    }
    let target = ctx.root.mkdir_all(&rel)?;
    let source = m
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(&m.fs_type));
    let data = m.options.data_string();
    let res = sys::mount(
        Some(&source),
        &fd_path(target.as_fd()),
        Some(&m.fs_type),
        mount_flags(m),
        data.as_deref(),
    );
    match res {
        // Without a network namespace of its own the kernel refuses a new sysfs; runc binds
        // the host's instead.
        Err(Errno::EPERM) if m.fs_type == "sysfs" => {
            let mut bind = m.clone();
            bind.source = Some(PathBuf::from("/sys"));
            bind.options.flags |= libc::MS_BIND | libc::MS_REC;
            bind.options.data.clear();
            return mount_bind(ctx, &bind);
        }
        r => r?,
    }
    after_mount(ctx.root, &rel, &m.options)
}

fn mount_tmpfs(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let rel = ctx.root.resolve(&m.destination)?;
    check_proc_mount(&rel, None)?;
    let old_mode = std::fs::metadata(ctx.root.path().join(&rel))
        .ok()
        .filter(|meta| meta.is_dir())
        .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()));
    // tmpcopyup reads what the tmpfs covers through a descriptor opened before the mount.
    let covered = match m.options.tmpcopyup {
        true => ctx.root.open_dir(&rel).ok(),
        false => None,
    };
    let target = ctx.root.mkdir_all(&rel)?;
    check_target(target.as_fd(), &rel, Some(true))?;
    let data = m.options.data_string();
    let source = m.source.clone().unwrap_or_else(|| PathBuf::from("tmpfs"));
    sys::mount(
        Some(&source),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        mount_flags(m),
        data.as_deref(),
    )?;
    if let Some(covered) = covered {
        let fresh = ctx.root.open_dir(&rel).context("open the new tmpfs")?;
        copyup::copy_tree(&covered, &fresh).context("tmpcopyup")?;
    }
    // Over an existing directory the tmpfs keeps that directory's mode unless "mode=" says.
    if let Some(mode) = old_mode {
        if !m.options.data.iter().any(|d| d.starts_with("mode=")) {
            let fd = ctx.root.open_path(&rel)?;
            let path = fd_path(fd.as_fd());
            std::fs::set_permissions(
                &path,
                std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
            )
            .with_context(|| format!("chmod {}", m.destination.display()))?;
        }
    }
    after_mount(ctx.root, &rel, &m.options)
}

fn mount_plain(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let rel = ctx.root.resolve(&m.destination)?;
    check_proc_mount(&rel, None)?;
    let target = ctx.root.mkdir_all(&rel)?;
    check_target(target.as_fd(), &rel, Some(true))?;
    let data = m.options.data_string();
    let source = m
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(&m.fs_type));
    sys::mount(
        Some(&source),
        &fd_path(target.as_fd()),
        Some(&m.fs_type),
        mount_flags(m),
        data.as_deref(),
    )?;
    after_mount(ctx.root, &rel, &m.options)
}

/// Propagation changes and recursive attributes, on the mount now at `rel`.
pub fn after_mount(root: &RootDir, rel: &Path, opts: &MountOptions) -> Result<()> {
    for &flag in &opts.propagation {
        let fd = root.open_path(rel)?;
        sys::mount(None, &fd_path(fd.as_fd()), None, flag, None)
            .context("change mount propagation")?;
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        let fd = root.open_path(rel)?;
        sys::mount_setattr_recursive(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            opts.rec_set,
            opts.rec_clear,
        )
        .context("mount_setattr (recursive options)")?;
    }
    Ok(())
}

/// What was opened as the target of a mount is what the checks on its path assumed: a
/// directory for a directory source (or a file for a file), and on procfs only where
/// [`check_proc_mount`] allows a mount (the path was checked before it was opened, and the
/// tree may have changed in between: a swapped directory or link now leading into /proc).
pub(super) fn check_target(
    fd: std::os::fd::BorrowedFd<'_>,
    rel: &Path,
    want_dir: Option<bool>,
) -> Result<()> {
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .context("fstat the mount target")?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if let Some(want) = want_dir {
        if want != is_dir {
            bail!(
                "mount target /{} is {} a directory",
                rel.display(),
                if is_dir { "" } else { "not" }
            );
        }
    }
    let fs = nix::sys::statfs::fstatfs(fd).context("fstatfs the mount target")?;
    let on_proc = fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC;
    // "proc" itself: check_proc_mount let only a procfs source through.
    let allowed = rel == Path::new("proc") || PROC_ALLOWED.iter().any(|a| rel == Path::new(a));
    if on_proc && !allowed {
        bail!(
            "mount target /{} is on procfs: refusing to mount over it",
            rel.display()
        );
    }
    Ok(())
}

/// Files under /proc that may be mounted over (lxcfs emulates them), as runc allows.
const PROC_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
];

/// Refuse mounts over /proc or inside it, except a procfs bind onto /proc and the files
/// lxcfs emulates. `rel` is the resolved destination relative to the root.
fn check_proc_mount(rel: &Path, source: Option<&Path>) -> Result<()> {
    if !rel.starts_with("proc") {
        return Ok(());
    }
    if rel == Path::new("proc") {
        let is_proc = source
            .and_then(|s| nix::sys::statfs::statfs(s).ok())
            .is_some_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        if is_proc {
            return Ok(());
        }
        bail!("/proc cannot be mounted over with something that is not of type proc");
    }
    if PROC_ALLOWED.iter().any(|a| rel == Path::new(a)) {
        return Ok(());
    }
    bail!(
        "/{} cannot be mounted because it is inside /proc",
        rel.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_clamps_at_root() {
        assert_eq!(lexical(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(lexical(Path::new("/dev/")), PathBuf::from("dev"));
    }

    #[test]
    fn proc_checks() {
        assert!(check_proc_mount(Path::new("proc/cpuinfo"), None).is_ok());
        assert!(check_proc_mount(Path::new("procfoo"), None).is_ok());
        assert!(check_proc_mount(Path::new("proc/sys"), None).is_err());
        assert!(check_proc_mount(Path::new("proc"), Some(Path::new("/proc"))).is_ok());
        assert!(check_proc_mount(Path::new("proc"), Some(Path::new("/tmp"))).is_err());
    }
}
