//! The container's root filesystem, set up by the init inside its new mount namespace, as
//! runc's libcontainer/rootfs_linux.go does it.
//!
//! [`prepare_rootfs`] does everything up to and including pivot_root; the init then sets the
//! hostname and sysctls and calls [`finalize_rootfs`]; [`mount_console`] binds a terminal's
//! pty onto /dev/console. Every mount destination is resolved inside the rootfs (see
//! [`paths`]) and mounted through /proc/self/fd/N, so a symlink or ".." in the image never
//! leads a mount out of it.
//!
//! Not done (yet): idmapped mounts (refused with a clear error), SELinux mount labels.

mod cgroup;
mod copyup;
mod dev_null;
mod devices;
mod finalize;

mod mounts;
pub mod paths;
mod pivot;
mod sys;

#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::{Context as _, Result};
use oci_spec::runtime::Spec;

pub use paths::resolve_in_root;

use mounts::{lexical, MountEntry};

/// How the init sets up the rootfs.
pub struct RootfsOptions<'a> {
    /// Absolute host path of the container root (spec.root.path resolved against the bundle).
    pub rootfs: &'a Path,
    /// --no-pivot: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has a mount namespace of its own. Without one, runc mounts into the
    /// caller's namespace and chroots into the rootfs instead of pivot_root.
    pub new_mount_ns: bool,
    /// A new cgroup namespace was made (v1 "cgroup" mounts are then fresh mounts, not binds).
    pub new_cgroup_ns: bool,
    /// In a user namespace devices are bind-mounted from the host, not mknod'ed.
    pub in_user_ns: bool,
    /// Bind sources opened beforehand by the host's root (index in spec.mounts → O_PATH
    /// descriptor): bound through /proc/self/fd/N, so a source the container's user
    /// namespace may not reach still mounts, as under runc.
    pub source_fds: &'a std::collections::HashMap<usize, std::os::fd::OwnedFd>,
}

/// The sources of the spec's bind mounts, by index in spec.mounts (the ones a helper
/// opens before the user namespace is entered).
pub fn bind_sources(spec: &Spec) -> Vec<(usize, std::path::PathBuf)> {
    spec.mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let entry = MountEntry::from_spec(m).ok()?;
            let source = entry.source.filter(|_| entry.options.is_bind())?;
            Some((i, source))
        })
        .collect()
}

/// What [`prepare_rootfs`] hands to [`finalize_rootfs`]: the host's /dev/null, cloned and
/// verified before the old root went away (see [`dev_null`]).
pub struct Prepared {
    dev_null: Option<std::os::fd::OwnedFd>,
}

/// Everything before and including pivot_root: propagation of "/", the rootfs bound onto
/// itself, every spec mount in order, the default and `linux.devices` devices with the /dev
/// links (unless /dev is a bind from the host), then `before_pivot` (createContainer hooks),
/// then pivot_root (MS_MOVE + chroot with `no_pivot`; chroot without a mount namespace) and
/// chdir("/").
///
/// Relative bind sources are resolved against the current directory, as runc resolves them
/// against the bundle it runs in.
pub fn prepare_rootfs(
    spec: &Spec,
    opts: &RootfsOptions,
    before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<Prepared> {
    // Taken before any container mount (a no-op in the init, which took it earlier).
    crate::linux::procfs::init()?;
    let rootfs = std::fs::canonicalize(opts.rootfs)
        .with_context(|| format!("rootfs {}", opts.rootfs.display()))?;
    // Everything the spec says is checked before the first mount.
    let linux = spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(name) if !name.is_empty() => {
            Some(crate::linux::mount::options::root_propagation(name)?)
        }
        _ => None,
    };
    let entries = spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut entry = MountEntry::from_spec(m).with_context(|| {
                format!(
                    "mount on {} in rootfs {}",
                    m.destination().display(),
                    rootfs.display()
                )
            })?;
            if let Some(fd) = opts.source_fds.get(&i) {
                entry.source = Some(sys::fd_path(std::os::fd::AsFd::as_fd(fd)));
            }
            Ok(entry)
        })
        .collect::<Result<Vec<_>>>()?;

    pivot::prepare_root(
        &rootfs,
        propagation.unwrap_or(libc::MS_SLAVE | libc::MS_REC),
    )?;

    // Opened after the bind, so lookups see the bind and the mounts made on it.
    let root = paths::RootDir::open(&rootfs)?;
    let ctx = mounts::MountContext { root: &root, opts };
    for entry in &entries {
        mounts::mount_entry(&ctx, entry)?;
    }

    let setup_dev = !entries
        .iter()
        .any(|e| e.options.is_bind() && lexical(&e.destination) == Path::new("dev"));
    if setup_dev {
        devices::create_devices(&root, &devices::devices(spec), opts.in_user_ns)?;
        devices::setup_ptmx(&root)
            .with_context(|| format!("set up /dev/ptmx in rootfs {}", rootfs.display()))?;
        devices::setup_dev_symlinks(&root)
            .with_context(|| format!("set up /dev links in rootfs {}", rootfs.display()))?;
    }
    drop(root);
    let dev_null = match linux.and_then(|l| l.masked_paths().as_deref()) {
        Some(paths) if !paths.is_empty() => dev_null::clone_host()?,
        _ => None,
    };

    nix::unistd::chdir(&rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    before_pivot()?;
    if opts.no_pivot {
        pivot::move_root(&rootfs)
    } else if opts.new_mount_ns {
        pivot::pivot_root(&rootfs)
    } else {
        pivot::chroot_into(&rootfs)
    }
    .with_context(|| format!("jail process inside rootfs {}", rootfs.display()))?;

    // The propagation asked for holds for the new "/" too (a shared root must be shared).
    if let Some(flags) = propagation {
        sys::mount(None, Path::new("/"), None, flags, None)
            .context("set propagation of the new /")?;
    }
    if setup_dev {
        devices::reopen_dev_null()?;
    }
    Ok(Prepared { dev_null })
}

/// After hostname and sysctls: `linux.readonlyPaths`, `linux.maskedPaths`, /dev read-only when
/// its mount says "ro", then `root.readonly`. Sets the umask to 0022 as runc does.
pub fn finalize_rootfs(spec: &Spec, prepared: Prepared) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        finalize::readonly_path(Path::new(p)).with_context(|| format!("make {p} read-only"))?;
    }
    let mut null = dev_null::MaskSource::new(prepared.dev_null);
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        finalize::mask_path(Path::new(p), &mut null).with_context(|| format!("mask {p}"))?;
    }
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        if lexical(m.destination()) != Path::new("dev") {
            continue;
        }
        let entry = MountEntry::from_spec(m)?;
        if entry.options.flags & libc::MS_RDONLY != 0 {
            finalize::remount_readonly(Path::new("/dev"), entry.options.flags)
                .context("remount /dev read-only")?;
        }
        break;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        finalize::set_root_readonly().context("make the rootfs read-only")?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    Ok(())
}

/// runc's warning for each mount whose destination is not absolute (the mount proceeds,
/// relative to the container's "/"), in runc 1.1's words.
pub fn mount_warnings(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|m| !m.destination().is_absolute())
        .map(|m| {
            format!(
                "mount destination {} is not absolute. Support for non-absolute mount destinations will be removed in a future release.",
                m.destination().display()
            )
        })
        .collect()
}

/// Bind the pty slave (an open descriptor of it) onto /dev/console, made safely inside the
/// root (see [`console_target`]): a /dev/console that is a symlink (to a proc file, say) is
/// never followed, so the pty lands on /dev/console and nowhere else (CVE-2025-52565).
pub fn mount_console(slave: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    let target = console_target().context("create /dev/console")?;
    dev_null::bind_fd(slave, std::os::fd::AsFd::as_fd(&target))
        .context("bind the console onto /dev/console")
}

/// /dev/console as an O_PATH descriptor: /dev opened inside the root, then "console" in it
/// created (an empty file, mode 0 as the umask-free create of runc) or opened, never through
/// a symlink. A symlink there is removed and replaced by the file (the runtime owns
/// /dev/console of a container with a terminal); anything but a regular file or a
/// character device is refused. The file must not be on procfs or sysfs.
fn console_target() -> Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
    let dev =
        dev_null::open_in_container(Path::new("/dev"), OFlag::O_DIRECTORY).context("open /dev")?;
    // O_PATH descriptors take no *at() creation: open /dev again as a real directory.
    let dev = nix::fcntl::openat(
        Some(dev.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /dev")?;
    // SAFETY: openat returned a new fd that nothing else owns.
    let dev = unsafe { OwnedFd::from_raw_fd(dev) };
    check_not_pseudo_fs(dev.as_fd(), "/dev")?;
    let name = "console";
    let open = || {
        nix::fcntl::openat(
            Some(dev.as_raw_fd()),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    };
    let create = || {
        nix::fcntl::openat(
            Some(dev.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(|fd| drop(unsafe_own(fd)))
    };
    match create() {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e).context("create /dev/console"),
    }
    let mut fd = unsafe_own(open().context("open /dev/console")?);
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("fstat /dev/console")?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFCHR => {}
        libc::S_IFLNK => {
            drop(fd);
            nix::unistd::unlinkat(
                Some(dev.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .context("remove the /dev/console symlink")?;
            create().context("create /dev/console")?;
            fd = unsafe_own(open().context("open /dev/console")?);
            let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("fstat /dev/console")?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                anyhow::bail!("/dev/console changed while it was being made");
            }
        }
        other => anyhow::bail!("/dev/console is not a file or a device (mode {other:o})"),
    }
    check_not_pseudo_fs(fd.as_fd(), "/dev/console")?;
    return Ok(fd);

    fn unsafe_own(fd: std::os::fd::RawFd) -> OwnedFd {
        // SAFETY: every caller passes a descriptor openat just returned, owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }
}

/// A runtime-made mount target must not be a file of procfs or sysfs (a symlink or a
/// swapped directory would have led there).
fn check_not_pseudo_fs(fd: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<()> {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let st = fstatfs(fd).with_context(|| format!("fstatfs {what}"))?;
    let t = st.filesystem_type();
    if t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC {
        anyhow::bail!("{what} is on procfs or sysfs: refusing to mount over it");
    }
    Ok(())
}
