//! Host device nodes in the spec, as containerd's `oci` package finds them (`getDevices`):
//! `--device PATH` (`WithDevices(path, "", "rwm")`: the node, or every node under a
//! directory, plus an allow rule for each in the device cgroup) and `--privileged`'s
//! `WithHostDevices` (every node under /dev).
//!
//! A directory is walked in name order; `pts`, `shm`, `fd`, `mqueue`, `.lxc`,
//! `.lxd-mounts` and `.udev` are skipped, as is any entry named `console`; entries that are
//! not device nodes (major 0: files, symlinks, sockets) are skipped, as are ones gone
//! meanwhile. A path given directly must be a device node.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{anyhow, Result};

use crate::ctl::spec_from_image::{Device, DeviceRule};
use crate::linux::go_errno::errno_text;

const SKIPPED_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// A walk deeper than this is a loop or an attack, not a device tree.
const MAX_DEPTH: usize = 32;

/// containerd's `ErrNotADevice`.
pub const NOT_A_DEVICE: &str = "not a device node";

/// The device node at `path` (not following a symlink), `None` when it is not one.
fn device_from_path(path: &Path) -> std::io::Result<Option<Device>> {
    let md = std::fs::symlink_metadata(path)?;
    let rdev = md.rdev();
    let major = libc::major(rdev);
    if major == 0 {
        return Ok(None);
    }
    let ft = md.file_type();
    let kind = if ft.is_block_device() {
        "b"
    } else if ft.is_char_device() {
        "c"
    } else {
        ""
    };
    Ok(Some(Device {
        path: path.display().to_string(),
        kind: kind.into(),
        major: major as i64,
        minor: libc::minor(rdev) as i64,
        file_mode: md.mode() & !libc::S_IFMT,
        uid: md.uid(),
        gid: md.gid(),
    }))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<Device>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(anyhow!("{}: device tree nested too deep", dir.display()));
    }
    let rd = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("open {}: {}", dir.display(), errno_text(&e)))?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let path = dir.join(&name);
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            if SKIPPED_DIRS.iter().any(|s| name == *s) {
                continue;
            }
            walk(&path, depth + 1, out)?;
            continue;
        }
        if name == "console" {
            continue;
        }
        match device_from_path(&path) {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("lstat {}: {}", path.display(), errno_text(&e))),
        }
    }
    Ok(())
}

/// `getDevices(path, "")`: the node at `path`, or every node under it.
pub fn devices_at(path: &Path) -> Result<Vec<Device>> {
    let md = std::fs::metadata(path).map_err(|e| {
        anyhow!(
            "error stating device path: stat {}: {}",
            path.display(),
            errno_text(&e)
        )
    })?;
    if !md.is_dir() {
        return match device_from_path(path) {
            Ok(Some(d)) => Ok(vec![d]),
            Ok(None) => Err(anyhow!(NOT_A_DEVICE)),
            Err(e) => Err(anyhow!("lstat {}: {}", path.display(), errno_text(&e))),
        };
    }
    let mut out = Vec::new();
    walk(path, 0, &mut out)?;
    Ok(out)
}

/// `HostDevices`: every device node under /dev.
pub fn host_devices() -> Result<Vec<Device>> {
    devices_at(Path::new("/dev"))
}

/// The device cgroup rule `WithDevices` adds for `d`.
pub fn allow_rule(d: &Device, access: &str) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind: d.kind.clone(),
        major: Some(d.major),
        minor: Some(d.minor),
        access: access.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_a_device_and_a_file_is_not() {
        let d = devices_at(Path::new("/dev/null")).unwrap();
        assert_eq!((d[0].kind.as_str(), d[0].major, d[0].minor), ("c", 1, 3));
        assert_eq!(
            devices_at(Path::new("/etc/hostname"))
                .unwrap_err()
                .to_string(),
            NOT_A_DEVICE
        );
        assert_eq!(
            devices_at(Path::new("/dev/ocibox-none"))
                .unwrap_err()
                .to_string(),
            "error stating device path: stat /dev/ocibox-none: no such file or directory"
        );
    }

    #[test]
    fn host_devices_skip_pts_and_console() {
        let all = host_devices().unwrap();
        assert!(all.iter().any(|d| d.path == "/dev/null"));
        assert!(!all.iter().any(|d| d.path.starts_with("/dev/pts/")));
        assert!(!all.iter().any(|d| d.path.ends_with("/console")));
    }
}
