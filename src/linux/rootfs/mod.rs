//! The container's root filesystem, set up by the init inside its new mount namespace:
//! propagation, the spec's mounts (targets resolved inside the rootfs), /dev, then
//! pivot_root; after hostname and sysctl, read-only and masked paths and a read-only root.
//! The order and the corner cases follow runc's rootfs_linux.go.

mod cgroup_mount;
mod devices;
mod mounts;
pub mod options;
pub mod paths;

pub use paths::resolve_in_root;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

pub struct RootfsOptions<'a> {
    /// Absolute host path of the container root.
    pub rootfs: &'a Path,
    /// `--no-pivot`: MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// A new cgroup namespace was made (cgroup mounts are then real cgroupfs mounts).
    pub new_cgroup_ns: bool,
    /// In a user namespace: devices are bind-mounted from the host, locked flags kept.
    pub in_user_ns: bool,
}

/// Everything up to and including pivot_root. `before_pivot` runs after the mounts and
/// devices are in place (the init runs the prestart/createRuntime handshake and the
/// createContainer hooks there).
pub fn prepare_rootfs(
    spec: &Spec,
    opts: &RootfsOptions,
    before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    let propagation = match linux.rootfs_propagation().as_deref() {
        Some(p) if !p.is_empty() => options::propagation_flag(p)?,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .context("set propagation of / in the container's mount namespace")?;
    make_parent_mount_private(opts.rootfs)?;
    mount(
        Some(opts.rootfs),
        opts.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind mount rootfs {} onto itself", opts.rootfs.display()))?;

    // Modes of created nodes and directories must be exactly what is asked.
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let result = (|| -> Result<()> {
        let mut dev_is_bind = false;
        let mut has_devpts = false;
        for m in spec.mounts().as_deref().unwrap_or_default() {
            mounts::mount_entry(m, opts)?;
            if m.destination() == Path::new("/dev") {
                let o = m.options().clone().unwrap_or_default();
                dev_is_bind = m.typ().as_deref() == Some("bind")
                    || o.iter().any(|x| x == "bind" || x == "rbind");
            }
            if m.typ().as_deref() == Some("devpts") && m.destination() == Path::new("/dev/pts") {
                has_devpts = true;
            }
        }
        if !dev_is_bind {
            devices::create_devices(
                opts.rootfs,
                linux.devices().as_deref().unwrap_or_default(),
                opts.in_user_ns,
            )?;
            devices::create_symlinks(opts.rootfs, has_devpts)?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old_umask);
    result?;

    before_pivot()?;
    if opts.no_pivot {
        move_root(opts.rootfs)
    } else {
        pivot_root(opts.rootfs)
    }
}

/// pivot_root needs the new root's parent mount not to be shared.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mut p = Some(rootfs);
    while let Some(dir) = p {
        match mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) => p = dir.parent(),
            Err(e) => return Err(e).with_context(|| format!("make {} private", dir.display())),
        }
    }
    Ok(())
}

/// pivot_root(".", "."), then detach the old root stacked underneath.
fn pivot_root(rootfs: &Path) -> Result<()> {
    let open_dir = |p: &Path| -> Result<OwnedFd> {
        let fd = nix::fcntl::open(
            p,
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open {}", p.display()))?;
        // SAFETY: open returned a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let old_root = open_dir(Path::new("/"))?;
    let new_root = open_dir(rootfs)?;
    nix::unistd::fchdir(new_root.as_raw_fd()).context("chdir to the new root")?;
    nix::unistd::pivot_root(".", ".")
        .with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    nix::unistd::fchdir(old_root.as_raw_fd()).context("chdir to the old root")?;
    // Keep the unmount from propagating back to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    nix::unistd::chdir("/").context("chdir to / in the new root")
}

/// `--no-pivot`: move the rootfs over / and chroot into it.
fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir to {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .with_context(|| format!("move {} onto /", rootfs.display()))?;
    nix::unistd::chroot(".").context("chroot into the rootfs")?;
    nix::unistd::chdir("/").context("chdir to / in the new root")
}

/// After hostname and sysctl: readonlyPaths, maskedPaths, then a read-only root.
pub fn finalize_rootfs(spec: &Spec) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        readonly_path(Path::new(p))?;
    }
    for p in linux.masked_paths().as_deref().unwrap_or_default() {
        mask_path(Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | mounts::current_flags("/");
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .context("remount the root filesystem read-only")?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("bind readonly path {}", p.display())),
    }
    let path = p.to_string_lossy();
    mounts::remount_bind(&path, MsFlags::MS_RDONLY | MsFlags::MS_REC, true)
        .with_context(|| format!("make {} read-only", p.display()))
}

fn mask_path(p: &Path) -> Result<()> {
    let res = if p.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    match res {
        Ok(()) | Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("mask {}", p.display())),
    }
}

/// Bind the pty slave onto /dev/console (a file made for it), as runc does.
pub fn mount_console(slave: &Path) -> Result<()> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).context("create /dev/console")?;
    }
    mount(
        Some(slave),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind {} onto /dev/console", slave.display()))
}
