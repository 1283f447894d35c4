//! "Mount these onto that directory": containerd's mount list (an overlay of snapshot
//! layers, a bind of a directory, …) applied in order onto one target, as containerd's
//! `mount.All` does. On failure, what was mounted is unmounted again, so the caller sees
//! either every mount or none.

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::options;

/// One mount as containerd describes it (the `Mount` message of its API, without target:
/// the target is the directory they are all stacked on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    /// The filesystem type ("overlay", "bind", "tmpfs"…); ignored for binds.
    pub fs_type: String,
    pub source: String,
    /// mount(8)-style options, parsed by [`options::parse`].
    pub options: Vec<String>,
}

/// A guard against unmounting forever while something else keeps mounting on the target;
/// far above any real stack (a caller may well have stacked thousands), every pass of the
/// loop below removes one mount.
const MAX_UNMOUNTS: usize = 1 << 20;

/// Mount every entry of `mounts` onto `target`, in order. An error unmounts the ones
/// already mounted. Propagation options are applied after each mount; recursive mount
/// attributes (`rro`…) are not (containerd does not send them for rootfs mounts).
pub fn mount_all(target: &Path, mounts: &[Mount]) -> Result<()> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(target, m) {
            for _ in 0..done {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(target: &Path, m: &Mount) -> Result<()> {
    let what = || format!("mount {} {} on {}", m.fs_type, m.source, target.display());
    let opts = options::parse(&m.options).with_context(what)?;
    let flags = MsFlags::from_bits_truncate(opts.flags);
    let bind = opts.is_bind();
    let fstype = if bind || m.fs_type.is_empty() {
        None
    } else {
        Some(m.fs_type.as_str())
    };
    let data = opts.data_string();
    // A bind ignores MS_RDONLY on the first mount: it takes a remount (below).
    let first = if bind {
        flags - MsFlags::MS_RDONLY - MsFlags::MS_REMOUNT
    } else {
        flags
    };
    mount(
        Some(m.source.as_str()),
        target,
        fstype,
        first,
        data.as_deref(),
    )
    .with_context(what)?;
    let rest = (|| -> Result<()> {
        if bind && flags.contains(MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .with_context(|| format!("remount {} read-only", target.display()))?;
        }
        for &p in &opts.propagation {
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::from_bits_truncate(p),
                None::<&str>,
            )
            .with_context(|| format!("set propagation of {}", target.display()))?;
        }
        Ok(())
    })();
    if rest.is_err() {
        let _ = umount2(target, MntFlags::MNT_DETACH);
    }
    rest
}

/// Unmount everything stacked on `target` (lazily, every layer, however many: until the
/// kernel says it is not a mount point any more, as containerd's `mount.UnmountAll`);
/// nothing mounted is fine.
pub fn unmount_all(target: &Path) {
    for _ in 0..MAX_UNMOUNTS {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::ensure;

    /// Runs `f` in a forked child in a private mount namespace; fails the test on its error.
    fn in_private_mount_ns(f: impl FnOnce(&Path) -> Result<()>) {
        let tmp = std::env::temp_dir().join(format!(
            "ocibox-mnt-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let work = || -> Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            f(&tmp)
        };
        let r = crate::linux::test_child::with_child(work, |_, r| r);
        let _ = std::fs::remove_dir_all(&tmp);
        r.unwrap();
    }

    #[test]
    fn read_only_bind_then_unmount_all() {
        in_private_mount_ns(|tmp| {
            let (src, dst) = (tmp.join("src"), tmp.join("dst"));
            std::fs::create_dir_all(&src)?;
            std::fs::create_dir_all(&dst)?;
            std::fs::write(src.join("f"), "x")?;
            let m = Mount {
                fs_type: "bind".into(),
                source: src.display().to_string(),
                options: vec!["rbind".into(), "ro".into()],
            };
            mount_all(&dst, &[m])?;
            ensure!(std::fs::read_to_string(dst.join("f"))? == "x");
            ensure!(std::fs::write(dst.join("g"), "y").is_err(), "not read-only");
            unmount_all(&dst);
            ensure!(!dst.join("f").exists(), "still mounted");
            Ok(())
        });
    }

    /// More than any fixed small cap: every one of them goes (64 were unmounted before).
    #[test]
    fn unmount_all_removes_a_deep_stack() {
        in_private_mount_ns(|tmp| {
            let dst = tmp.join("deep");
            std::fs::create_dir_all(&dst)?;
            std::fs::write(dst.join("under"), "")?;
            let m = Mount {
                fs_type: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["size=64k".into()],
            };
            mount_all(&dst, &vec![m; 300])?;
            ensure!(!dst.join("under").exists(), "not mounted");
            unmount_all(&dst);
            ensure!(dst.join("under").exists(), "a mount is left on the target");
            Ok(())
        });
    }

    #[test]
    fn a_failing_mount_leaves_nothing_mounted() {
        in_private_mount_ns(|tmp| {
            let dst = tmp.join("dst");
            std::fs::create_dir_all(&dst)?;
            std::fs::write(dst.join("under"), "")?;
            let ok = Mount {
                fs_type: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["size=1m".into()],
            };
            let bad = Mount {
                fs_type: "bind".into(),
                source: tmp.join("missing").display().to_string(),
                options: vec!["bind".into()],
            };
            let e = mount_all(&dst, &[ok, bad]).unwrap_err();
            ensure!(format!("{e:#}").contains("missing"), "{e:#}");
            ensure!(dst.join("under").exists(), "the tmpfs is still mounted");
            Ok(())
        });
    }
}
