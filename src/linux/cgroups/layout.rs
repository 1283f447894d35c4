//! Which cgroup hierarchy the host runs (v1, hybrid, unified v2), detected once, and where the
//! v1 controllers are mounted (from /proc/self/mountinfo) and which cgroup we are in
//! (from /proc/self/cgroup).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The default mount point of the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Where a hybrid host mounts the cgroup2 hierarchy next to the v1 controllers.
pub const UNIFIED_MOUNTPOINT: &str = "/sys/fs/cgroup/unified";

/// The host's cgroup layout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controllers, plus a cgroup2 hierarchy (usually without controllers) at
    /// /sys/fs/cgroup/unified.
    Hybrid,
    /// Only the unified cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
}

/// Detect the layout by statfs of /sys/fs/cgroup (cgroup2 magic: v2; tmpfs: v1, hybrid when
/// /sys/fs/cgroup/unified is cgroup2). Detected once per process and cached.
pub fn detect_layout() -> Result<Layout> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(*l);
    }
    let l = detect_layout_uncached()?;
    Ok(*LAYOUT.get_or_init(|| l))
}

fn detect_layout_uncached() -> Result<Layout> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
    let st = statfs(CGROUP_ROOT).with_context(|| format!("statfs {}", CGROUP_ROOT))?;
    let ty = st.filesystem_type();
    if ty == CGROUP2_SUPER_MAGIC {
        return Ok(Layout::V2);
    }
    if ty != TMPFS_MAGIC && ty != CGROUP_SUPER_MAGIC {
        bail!(
            "{} is neither a cgroup2 mount nor a tmpfs holding cgroup v1 hierarchies",
            CGROUP_ROOT
        );
    }
    match statfs(UNIFIED_MOUNTPOINT) {
        Ok(u) if u.filesystem_type() == CGROUP2_SUPER_MAGIC => Ok(Layout::Hybrid),
        _ => Ok(Layout::V1),
    }
}

/// One mounted v1 hierarchy as seen in mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mountpoint: PathBuf,
    /// The cgroup that is the root of this mount (field 4 of mountinfo; "/" on the host).
    pub root: String,
}

/// Controller name (as in /proc/self/cgroup: "memory", "cpu", "name=systemd") to its mount.
/// Co-mounted controllers ("cpu,cpuacct") each map to the shared mount.
pub fn parse_v1_mounts(mountinfo: &str) -> BTreeMap<String, V1Mount> {
    let mut out = BTreeMap::new();
    for mi in crate::linux::mountinfo::parse(mountinfo) {
        if mi.fs_type != "cgroup" {
            continue;
        }
        let mount = V1Mount {
            mountpoint: PathBuf::from(&mi.mount_point),
            root: mi.root.clone(),
        };
        for opt in mi.super_options.split(',') {
            if KNOWN_V1_CONTROLLERS.contains(&opt) || opt.starts_with("name=") {
                out.entry(opt.to_string()).or_insert_with(|| mount.clone());
            }
        }
    }
    out
}

/// The v1 controllers the kernel may offer (besides named hierarchies like name=systemd).
pub const KNOWN_V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// Read and parse the v1 mounts of this process.
pub fn v1_mounts() -> Result<BTreeMap<String, V1Mount>> {
    let s = std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(parse_v1_mounts(&s))
}

/// Parse /proc/<pid>/cgroup: controller name (or "" for the cgroup2 line "0::/path") to path.
pub fn parse_proc_cgroup(content: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in content.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), path.to_string());
        } else {
            for c in ctrls.split(',') {
                out.insert(c.to_string(), path.to_string());
            }
        }
    }
    out
}

/// The cgroups this process is in, per controller ("" is the cgroup2 entry).
pub fn own_cgroups() -> Result<BTreeMap<String, String>> {
    let s = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&s))
}

/// Join a cgroup path ("/a/b") under a directory without letting it climb out.
pub fn join_under(dir: &Path, cgroup: &str) -> PathBuf {
    let rel = super::cgroup_path::clean_path(cgroup);
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_and_comounted_controllers() {
        let mi = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:40 /sub /sys/fs/cgroup/net_cls,net_prio rw shared:9 - cgroup cgroup rw,net_cls,net_prio
";
        let m = parse_v1_mounts(mi);
        assert_eq!(m["cpu"].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(
            m["cpuacct"].mountpoint,
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            m["name=systemd"].mountpoint,
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert_eq!(m["net_prio"].mountpoint, m["net_cls"].mountpoint);
        assert_eq!(m["net_cls"].root, "/sub");
        assert!(!m.contains_key("xattr"));
        assert!(!m.contains_key("rw"));
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn proc_cgroup() {
        let m = parse_proc_cgroup("9:name=systemd:/\n2:cpu,cpuacct:/x\n0::/u\n");
        assert_eq!(m["name=systemd"], "/");
        assert_eq!(m["cpu"], "/x");
        assert_eq!(m["cpuacct"], "/x");
        assert_eq!(m[""], "/u");
    }

    #[test]
    fn this_host_layout() {
        // Whatever the host is, detection must succeed and be stable.
        let a = detect_layout().unwrap();
        assert_eq!(a, detect_layout().unwrap());
    }
}
