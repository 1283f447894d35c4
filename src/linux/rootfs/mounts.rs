//! One `mounts[]` entry of config.json, mounted inside the rootfs.

use super::cgroup_mount;
use super::options::{self, Parsed};
use super::paths::{mkdir_all_in_root, resolve_in_root, Target};
use super::RootfsOptions;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::path::{Path, PathBuf};

pub fn mount_entry(m: &Mount, opts: &RootfsOptions) -> Result<()> {
    let root = opts.rootfs;
    let dest = m.destination();
    if !dest.is_absolute() {
        bail!("mount destination {} is not absolute", dest.display());
    }
    let parsed = options::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let target = resolve_in_root(root, dest)?;
    // /proc and /sys must be real directories in the image, never symlinks to elsewhere.
    for special in ["/proc", "/sys"] {
        let wanted = root.join(special.trim_start_matches('/'));
        if dest == Path::new(special) && target != wanted {
            bail!(
                "{} cannot be mounted on {}: it is a symlink in the rootfs",
                special,
                dest.display()
            );
        }
    }
    let source = m.source().clone().unwrap_or_default();
    let what = || {
        format!(
            "mount {} on {} in rootfs {}",
            if source.as_os_str().is_empty() {
                Path::new(typ)
            } else {
                &source
            }
            .display(),
            dest.display(),
            root.display()
        )
    };
    if parsed.bind || typ == "bind" {
        bind_mount(&source, &target, &parsed, opts).with_context(what)?;
    } else if typ == "cgroup" || typ == "cgroup2" {
        mkdir_all_in_root(root, &target, 0o755).with_context(what)?;
        cgroup_mount::mount_cgroups(typ, &target, &parsed, opts).with_context(what)?;
    } else {
        mkdir_all_in_root(root, &target, 0o755).with_context(what)?;
        let t = Target::open(root, &target).with_context(what)?;
        let res = mount(
            Some(source.as_path()),
            t.proc_path().as_str(),
            Some(typ),
            parsed.flags,
            parsed.data_string().as_deref(),
        );
        match res {
            Ok(()) => {}
            // sysfs needs a network namespace the user namespace owns: runc falls back to
            // a read-only recursive bind of the host's /sys.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" && opts.in_user_ns => {
                let fallback = options::parse(&[
                    "rbind".into(),
                    "nosuid".into(),
                    "noexec".into(),
                    "nodev".into(),
                    "ro".into(),
                ])?;
                bind_mount(Path::new("/sys"), &target, &fallback, opts).with_context(what)?;
            }
            Err(e) => return Err(e).with_context(what),
        }
    }
    apply_propagation(&target, &parsed).with_context(what)
}

fn bind_mount(source: &Path, target: &Path, p: &Parsed, opts: &RootfsOptions) -> Result<()> {
    let source = absolute_source(source)?;
    let meta =
        std::fs::metadata(&source).with_context(|| format!("bind source {}", source.display()))?;
    let root = opts.rootfs;
    if meta.is_dir() {
        mkdir_all_in_root(root, target, 0o755)?;
    } else {
        if let Some(parent) = target.parent() {
            mkdir_all_in_root(root, parent, 0o755)?;
        }
        if std::fs::symlink_metadata(target).is_err() {
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(target)
                .with_context(|| format!("create bind target {}", target.display()))?;
        }
    }
    let t = Target::open(root, target)?;
    let mut flags = MsFlags::MS_BIND;
    if p.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source.as_path()),
        t.proc_path().as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )?;
    let want = p.remount_flags();
    if !want.is_empty() {
        // The descriptor opened before the mount names what is underneath: open the
        // new mount again to remount it.
        let mounted = Target::open(root, target)?;
        remount_bind(&mounted.proc_path(), want, opts.in_user_ns)?;
    }
    Ok(())
}

/// Remount a bind mount with `flags`. In a user namespace the flags the kernel locked on
/// the source (nosuid, nodev, noexec, ro) must be kept or the remount fails with EPERM.
pub fn remount_bind(path: &str, flags: MsFlags, keep_locked: bool) -> Result<()> {
    let mut flags = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if keep_locked {
        flags |= current_flags(path);
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("remount {path} with {flags:?}"))
}

/// The flags a mount carries now, as statvfs reports them.
pub fn current_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

fn apply_propagation(target: &Path, p: &Parsed) -> Result<()> {
    for flag in &p.propagation {
        mount(None::<&str>, target, None::<&str>, *flag, None::<&str>)
            .with_context(|| format!("set propagation {flag:?}"))?;
    }
    Ok(())
}

/// Relative bind sources are relative to the bundle (the init's working directory).
fn absolute_source(source: &Path) -> Result<PathBuf> {
    if source.is_absolute() {
        return Ok(source.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(source))
}
