//! /dev inside the container: the default device nodes, `linux.devices`, the /dev/pts/ptmx
//! link and the /proc/self/fd links — all skipped when /dev is a bind of the host's.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::paths::RootDir;
use super::sys::{self, fd_path};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: LinuxDeviceType,
    pub major: i64,
    pub minor: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's list), as character devices mode 0666.
const DEFAULTS: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The spec's `linux.devices`, then the defaults it does not name itself.
pub fn devices(spec: &Spec) -> Vec<Device> {
    let mut out: Vec<Device> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
        .iter()
        .map(|d| Device {
            path: d.path().clone(),
            kind: d.typ(),
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        })
        .collect();
    for &(path, major, minor) in DEFAULTS {
        if !out.iter().any(|d| d.path == Path::new(path)) {
            out.push(Device {
                path: path.into(),
                kind: LinuxDeviceType::C,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
    }
    out
}

/// Create every device; in a user namespace (or where mknod is refused) bind the host's node.
pub fn create_devices(root: &RootDir, devices: &[Device], in_user_ns: bool) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let res = devices.iter().try_for_each(|d| {
        create_device(root, d, in_user_ns).with_context(|| {
            format!(
                "create device {} in rootfs {}",
                d.path.display(),
                root.path().display()
            )
        })
    });
    nix::sys::stat::umask(old);
    res
}

fn create_device(root: &RootDir, d: &Device, bind: bool) -> Result<()> {
    let rel = root.resolve(&d.path)?;
    let (Some(name), Some(parent)) = (rel.file_name(), rel.parent()) else {
        bail!("a device cannot be created on the rootfs itself");
    };
    if bind {
        // As with mknod's EEXIST below: what the image has there stays, and a symlink is
        // never followed to a file to bind the device onto.
        if is_symlink_in(root, parent, name)? {
            return Ok(());
        }
        return bind_device(root, &rel, &d.path);
    }
    let kind = match d.kind {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => bail!("device type \"a\" cannot be created"),
    };
    let dir = root.mkdir_all(parent)?;
    let dev = makedev(d.major as u64, d.minor as u64);
    let mode = Mode::from_bits_truncate(d.mode as libc::mode_t);
    match nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::EPERM) if is_symlink_in(root, parent, name)? => return Ok(()),
        Err(Errno::EPERM) => return bind_device(root, &rel, &d.path),
        Err(e) => return Err(e).context("mknod"),
    }
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("chown")
}

/// Whether `name` in the directory `parent` (inside the root) is a symlink.
fn is_symlink_in(root: &RootDir, parent: &Path, name: &std::ffi::OsStr) -> Result<bool> {
    let dir = root.mkdir_all(parent)?;
    match nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(st.st_mode & libc::S_IFMT == libc::S_IFLNK),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e).context("lstat"),
    }
}

fn bind_device(root: &RootDir, rel: &Path, host: &Path) -> Result<()> {
    let target = root.create_file(rel)?;
    sys::mount(
        Some(host),
        &fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        None,
    )
    .with_context(|| format!("bind {} from the host", host.display()))
}

/// /dev/ptmx becomes a link to pts/ptmx (the devpts instance of the container).
pub fn setup_ptmx(root: &RootDir) -> Result<()> {
    let dev = root.mkdir_all(Path::new("/dev"))?;
    match nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context("remove /dev/ptmx"),
    }
    nix::unistd::symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .context("symlink /dev/ptmx -> pts/ptmx")
}

/// /dev/fd, stdin, stdout, stderr (and core when the kernel has /proc/kcore).
pub fn setup_dev_symlinks(root: &RootDir) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let dev = root.mkdir_all(Path::new("/dev"))?;
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    Ok(())
}

/// After the pivot: stdio that pointed at the host's /dev/null now points at the container's,
/// if the container's is the null device: opened without following a symlink and checked by
/// fstat. Anything else at /dev/null (a symlink to a proc file, a regular file) is left
/// alone, and stdio keeps the host's null device, which is just as empty.
pub fn reopen_dev_null() -> Result<()> {
    let null = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open("/dev/null")
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(()),
        Err(e) => return Err(e).context("open /dev/null"),
    };
    if super::dev_null::verify(null.as_fd()).is_err() {
        return Ok(());
    }
    let null_rdev = nix::sys::stat::fstat(null.as_raw_fd())
        .context("stat /dev/null")?
        .st_rdev;
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null_rdev {
            nix::unistd::dup2(null.as_raw_fd(), fd)
                .with_context(|| format!("reopen fd {fd} on /dev/null"))?;
        }
    }
    Ok(())
}
