//! A `cgroup` mount in the container: on v1 (and hybrid) hosts a tmpfs with one
//! directory per hierarchy, as runc does; cgroup2 on a unified host.

use super::mounts::remount_bind;
use super::options::Parsed;
use super::paths::Target;
use super::RootfsOptions;
use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::path::{Path, PathBuf};

/// One cgroup hierarchy of the host: where it is mounted, its fs type and options.
struct Hierarchy {
    mount_point: PathBuf,
    root: String,
    fstype: String,
    super_opts: String,
}

pub fn mount_cgroups(typ: &str, target: &Path, p: &Parsed, opts: &RootfsOptions) -> Result<()> {
    let hierarchies = host_hierarchies()?;
    let unified_only = hierarchies.iter().all(|h| h.fstype == "cgroup2");
    let t = Target::open(opts.rootfs, target)?;
    if typ == "cgroup2" || unified_only {
        return mount(
            Some("cgroup2"),
            t.proc_path().as_str(),
            Some("cgroup2"),
            p.flags,
            None::<&str>,
        )
        .context("mount cgroup2");
    }
    // A tmpfs holds one directory per hierarchy; it is made read-only last if asked.
    let tmpfs_flags = p.flags & !MsFlags::MS_RDONLY;
    mount(
        Some("tmpfs"),
        t.proc_path().as_str(),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .context("mount tmpfs for cgroup hierarchies")?;
    let own = own_cgroups();
    for h in &hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let dir = target.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let dt = Target::open(opts.rootfs, &dir)?;
        if opts.new_cgroup_ns {
            // Rooted at the container's cgroup by the namespace.
            let (fstype, data) = if h.fstype == "cgroup2" {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.super_opts.as_str()))
            };
            mount(
                Some("cgroup"),
                dt.proc_path().as_str(),
                Some(fstype),
                p.flags & !MsFlags::MS_RDONLY,
                data,
            )
            .with_context(|| format!("mount {fstype} {}", h.mount_point.display()))?;
        } else {
            let sub = own_path_in(&own, h);
            let rel = sub
                .strip_prefix(&h.root)
                .unwrap_or(&sub)
                .trim_start_matches('/');
            let src = h.mount_point.join(rel);
            mount(
                Some(src.as_path()),
                dt.proc_path().as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind {}", src.display()))?;
        }
        let want = p.remount_flags();
        if !want.is_empty() {
            let mounted = Target::open(opts.rootfs, &dir)?;
            remount_bind(&mounted.proc_path(), want, opts.in_user_ns)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") get a symlink per controller.
        if let Some(n) = name.to_str().filter(|n| n.contains(',')) {
            for c in n.split(',') {
                let _ = std::os::unix::fs::symlink(n, target.join(c));
            }
        }
    }
    if p.flags.contains(MsFlags::MS_RDONLY) {
        let mounted = Target::open(opts.rootfs, target)?;
        mount(
            None::<&str>,
            mounted.proc_path().as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            None::<&str>,
        )
        .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}

/// The host's cgroup hierarchies from /proc/self/mountinfo.
fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let fstype = r[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let super_opts = r[2]
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect::<Vec<_>>()
            .join(",");
        out.push(Hierarchy {
            mount_point: PathBuf::from(l[4]),
            root: l[3].to_string(),
            fstype: fstype.to_string(),
            super_opts,
        });
    }
    Ok(out)
}

/// This process's cgroup in hierarchy `h` ("/" when not found).
fn own_path_in(own: &[(String, String)], h: &Hierarchy) -> String {
    let opts: Vec<&str> = h.super_opts.split(',').collect();
    own.iter()
        .find(|(ctrls, _)| {
            if h.fstype == "cgroup2" {
                ctrls.is_empty()
            } else {
                !ctrls.is_empty() && ctrls.split(',').any(|c| opts.contains(&c))
            }
        })
        .map(|(_, path)| path.clone())
        .unwrap_or_else(|| "/".to_string())
}

/// (controllers, path) of this process's cgroups, from /proc/self/cgroup.
fn own_cgroups() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _ = parts.next()?;
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}
