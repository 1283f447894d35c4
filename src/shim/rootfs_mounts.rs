//! The rootfs mounts containerd sends with Create (an overlay of snapshot layers, or a bind
//! of a directory), mounted in order onto `<bundle>/rootfs` and unmounted at Delete.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The flags mount(8) understands in an options list; everything else is fs data.
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "defaults" | "suid" | "dev" | "exec" | "async" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Mounts `mounts` onto `<bundle>/rootfs`; returns the rootfs path. On failure what was
/// mounted is unmounted again.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<PathBuf> {
    let rootfs = bundle.join("rootfs");
    if mounts.is_empty() {
        return Ok(rootfs);
    }
    std::fs::create_dir_all(&rootfs)
        .with_context(|| format!("create rootfs directory {}", rootfs.display()))?;
    for (done, m) in mounts.iter().enumerate() {
        let (flags, data) = parse_options(&m.options);
        let fstype = if flags.contains(MsFlags::MS_BIND) || m.type_.is_empty() {
            None
        } else {
            Some(m.type_.as_str())
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        // A bind ignores MS_RDONLY on the first mount: it is applied by a remount below.
        let first = if fstype.is_none() {
            flags - MsFlags::MS_RDONLY
        } else {
            flags
        };
        let r = mount(Some(m.source.as_str()), &rootfs, fstype, first, data).with_context(|| {
            format!(
                "mount {} {} on rootfs {}",
                m.type_,
                m.source,
                rootfs.display()
            )
        });
        // A read-only bind needs a remount to take effect.
        let r = r.and_then(|_| {
            if fstype.is_none() && flags.contains(MsFlags::MS_RDONLY) {
                mount(
                    None::<&str>,
                    &rootfs,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .with_context(|| format!("remount rootfs {} read-only", rootfs.display()))?;
            }
            Ok(())
        });
        if let Err(e) = r {
            for _ in 0..done {
                let _ = umount2(&rootfs, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(rootfs)
}

/// Unmounts everything mounted on `<bundle>/rootfs` (lazily, all layers).
pub fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    for _ in 0..64 {
        if umount2(&rootfs, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_become_data() {
        let o: Vec<String> = ["index=off", "lowerdir=/a:/b", "ro"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, d) = parse_options(&o);
        assert!(f.contains(MsFlags::MS_RDONLY));
        assert_eq!(d, "index=off,lowerdir=/a:/b");
        let (f, _) = parse_options(&["rbind".to_string()]);
        assert!(f.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
    }
}
