//! /dev in the container: the default device nodes, `linux.devices`, and the standard
//! symlinks. In a user namespace nodes cannot be made, so they are bind-mounted from the
//! host, as runc does.

use super::paths::{mkdir_all_in_root, resolve_in_root, Target};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::path::Path;

/// (path, major, minor) of the devices every container gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub fn create_devices(root: &Path, spec_devices: &[LinuxDevice], in_user_ns: bool) -> Result<()> {
    for (path, major, minor) in DEFAULT_DEVICES {
        if spec_devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_node(
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            *major,
            *minor,
            0o666,
            0,
            0,
            in_user_ns,
        )?;
    }
    for d in spec_devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                bail!("device {}: type 'a' cannot be created", d.path().display())
            }
        };
        make_node(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
            in_user_ns,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_node(
    root: &Path,
    dev: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    in_user_ns: bool,
) -> Result<()> {
    if !dev.starts_with("/dev") {
        bail!("device {} is not under /dev", dev.display());
    }
    let target = resolve_in_root(root, dev)?;
    if let Some(parent) = target.parent() {
        mkdir_all_in_root(root, parent, 0o755)?;
    }
    let _ = std::fs::remove_file(&target);
    if in_user_ns {
        // Bind the host's node over an empty file.
        std::fs::File::create(&target).with_context(|| format!("create {}", target.display()))?;
        let t = Target::open(root, &target)?;
        return mount(
            Some(dev),
            t.proc_path().as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind device {} from the host", dev.display()));
    }
    mknod(
        &target,
        kind,
        Mode::from_bits_truncate(mode as libc::mode_t),
        makedev(major, minor),
    )
    .with_context(|| format!("mknod {} ({major}:{minor})", dev.display()))?;
    // mknod is subject to the umask; set the mode the spec asked for exactly.
    nix::sys::stat::fchmodat(
        None,
        &target,
        Mode::from_bits_truncate(mode as libc::mode_t),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("chmod {}", dev.display()))?;
    nix::unistd::chown(&target, Some(uid.into()), Some(gid.into()))
        .with_context(|| format!("chown {}", dev.display()))?;
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub fn create_symlinks(root: &Path, has_devpts: bool) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (src, dst) in links {
        let target = resolve_in_root(root, Path::new(dst))?;
        match std::os::unix::fs::symlink(src, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("symlink {dst} -> {src}")),
        }
    }
    if has_devpts {
        let ptmx = resolve_in_root(root, Path::new("/dev/ptmx"))?;
        let _ = std::fs::remove_file(&ptmx);
        std::os::unix::fs::symlink("pts/ptmx", &ptmx).context("symlink /dev/ptmx -> pts/ptmx")?;
    }
    Ok(())
}
