//! "cgroup" spec mounts, as runc does them. On a cgroup v2 host: a cgroup2 mount (a bind of
//! the host's hierarchy when the kernel refuses, e.g. no cgroup namespace). On a v1 or hybrid
//! host: a tmpfs with one entry per v1 hierarchy — a fresh cgroup mount of that hierarchy in a
//! new cgroup namespace, otherwise a bind of this process's own cgroup directory — plus
//! symlinks for co-mounted controllers (cpu → cpu,cpuacct), and the tmpfs made read-only when
//! the mount says "ro".

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use nix::errno::Errno;

use super::mounts::{after_mount, mount_entry, remount_bind, MountContext, MountEntry};
use super::sys::{self, fd_path};
use crate::linux::mount::options::MountOptions;
use crate::linux::mountinfo;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const DEFAULT_FLAGS: libc::c_ulong = libc::MS_NOEXEC | libc::MS_NOSUID | libc::MS_NODEV;

/// True when the host's /sys/fs/cgroup is a pure cgroup v2 hierarchy.
fn host_is_unified() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub fn mount_cgroup(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    if host_is_unified() {
        mount_v2(ctx, m)
    } else {
        mount_v1(ctx, m)
    }
}

fn mount_v2(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let rel = ctx.root.resolve(&m.destination)?;
    let target = ctx.root.mkdir_all(&rel)?;
    let data = m.options.data_string();
    let res = sys::mount(
        Some(Path::new("cgroup2")),
        &fd_path(target.as_fd()),
        Some("cgroup2"),
        m.options.flags,
        data.as_deref(),
    );
    match res {
        Err(Errno::EPERM) | Err(Errno::EBUSY) => {
            let mut bind = m.clone();
            bind.source = Some(PathBuf::from(CGROUP_ROOT));
            bind.fs_type = "bind".into();
            bind.options.flags |= libc::MS_BIND;
            bind.options.data.clear();
            mount_entry(ctx, &bind)
        }
        r => {
            r.context("mount cgroup2")?;
            after_mount(ctx.root, &rel, &m.options)
        }
    }
}

/// A v1 hierarchy of the host, with this process's place in it.
struct Hierarchy {
    /// "cpu", "cpu,cpuacct", "name=systemd": the mount data that names it.
    controllers: String,
    /// The host directory of this process's cgroup in it.
    own_dir: PathBuf,
    /// Base name of the host mount point ("cpu", "systemd"), the name under the destination.
    name: String,
}

/// `new_cgroup_ns`: the caller is in the container's own cgroup namespace, where
/// /proc/self/cgroup says "/" and mountinfo shows the host's mount roots as "/.." (outside
/// the namespace root); each hierarchy is then mounted afresh, so our place in it is not
/// needed and no hierarchy may be skipped for lack of it.
fn hierarchies(new_cgroup_ns: bool) -> Result<Vec<Hierarchy>> {
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let own: Vec<(Vec<&str>, &str)> = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let ctrl = f.next()?;
            let path = f.next()?;
            (!ctrl.is_empty()).then(|| (ctrl.split(',').collect(), path))
        })
        .collect();
    let mut out = Vec::new();
    for mi in mountinfo::read()? {
        if mi.fs_type != "cgroup" {
            continue;
        }
        let words: Vec<&str> = mi.super_options.split(',').collect();
        let Some((ctrl, path)) = own
            .iter()
            .find(|(ctrl, _)| ctrl.iter().all(|c| words.contains(c)))
        else {
            continue;
        };
        // Our cgroup relative to the root of this mount (a bind of a sub-tree has a root
        // other than "/"); outside it, this mount cannot show our cgroup.
        let rel = match Path::new(path).strip_prefix(&mi.root) {
            Ok(rel) => rel,
            Err(_) if new_cgroup_ns => Path::new(""),
            Err(_) => continue,
        };
        let mount_point = Path::new(&mi.mount_point);
        let Some(name) = mount_point.file_name() else {
            continue;
        };
        // Several mounts of one hierarchy: keep the first, as runc does.
        if out
            .iter()
            .any(|h: &Hierarchy| h.controllers == ctrl.join(","))
        {
            continue;
        }
        out.push(Hierarchy {
            controllers: ctrl.join(","),
            own_dir: mount_point.join(rel),
            name: name.to_string_lossy().into_owned(),
        });
    }
    Ok(out)
}

fn mount_v1(ctx: &MountContext<'_>, m: &MountEntry) -> Result<()> {
    let hierarchies = hierarchies(ctx.opts.new_cgroup_ns)?;
    let tmpfs = MountEntry {
        source: Some(PathBuf::from("tmpfs")),
        destination: m.destination.clone(),
        fs_type: "tmpfs".into(),
        options: MountOptions {
            flags: DEFAULT_FLAGS,
            data: vec!["mode=755".into()],
            propagation: m.options.propagation.clone(),
            ..Default::default()
        },
    };
    mount_entry(ctx, &tmpfs)?;
    let read_only = m.options.flags & libc::MS_RDONLY != 0;
    for h in &hierarchies {
        let dest = m.destination.join(&h.name);
        if ctx.opts.new_cgroup_ns {
            let rel = ctx.root.resolve(&dest)?;
            let target = ctx.root.mkdir_all(&rel)?;
            // The same check as every other mount target: a directory, never on procfs.
            super::mounts::check_target(target.as_fd(), &rel, Some(true))?;
            let flags = DEFAULT_FLAGS | (m.options.flags & libc::MS_RDONLY);
            // As runc: the named systemd hierarchy has "systemd" as its source.
            let source = if h.controllers.starts_with("name=") {
                "systemd"
            } else {
                "cgroup"
            };
            sys::mount(
                Some(Path::new(source)),
                &fd_path(target.as_fd()),
                Some("cgroup"),
                flags,
                Some(&h.controllers),
            )
            .with_context(|| format!("mount cgroup {} on {}", h.controllers, dest.display()))?;
        } else {
            let bind = MountEntry {
                source: Some(h.own_dir.clone()),
                destination: dest,
                fs_type: "bind".into(),
                options: MountOptions {
                    flags: libc::MS_BIND | libc::MS_REC | m.options.flags,
                    propagation: m.options.propagation.clone(),
                    ..Default::default()
                },
            };
            mount_entry(ctx, &bind)?;
        }
    }
    // Co-mounted controllers get a link per controller: cpu -> cpu,cpuacct.
    let dir = ctx.root.mkdir_all(&m.destination)?;
    for h in hierarchies.iter().filter(|h| h.name.contains(',')) {
        for part in h.name.split(',') {
            match nix::unistd::symlinkat(
                h.name.as_str(),
                Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
                part,
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("symlink {part} -> {}", h.name)),
            }
        }
    }
    if read_only {
        let rel = ctx.root.resolve(&m.destination)?;
        remount_bind(ctx.root, &rel, DEFAULT_FLAGS | libc::MS_RDONLY)
            .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}
