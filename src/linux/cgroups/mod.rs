//! The cgroup manager: one API over cgroup v1 (and hybrid) and v2 hosts.
//!
//! The layout is detected once ([`detect_layout`]); [`Manager::new`] reads `cgroupsPath` as
//! runc does and computes the directories; the manager is plain data (serde) so the runtime
//! keeps it in the container's state.json and later commands (exec, update, pause, events,
//! delete) act on the same directories.
//!
//! Modules: `layout` (detection, mountinfo, /proc/self/cgroup), `cgroup_path` (cgroupsPath
//! syntax), `v1` / `v2` (directories, joining, freezer, pids, removal), `v1_resources` /
//! `v2_resources` (writing linux.resources), `convert` (v1↔v2 values), `device_rules` and `bpf`
//! (devices: v1 lines, v2 eBPF program), `stats` (runc's events --stats shape), `oom`,
//! `warmup` (the kernel's migration lock warmed before a new init joins its cgroups).
//!
//! Not done (yet), on purpose and said plainly:
//! - the systemd driver: `--systemd-cgroup` gives a clear error (no D-Bus client);
//! - device rule updates on v1 are "deny all, then the rules", not runc's minimal transitions,
//!   so a running container may briefly see every device denied during `update`;
//! - like runc, `destroy` removes the container's own directories (and any below them), not
//!   parent directories an absolute cgroupsPath implied;
//! - stats leave cpuset and PSI empty; cpu shares→weight uses runc 1.1's
//!   linear formula.

pub mod bpf;
pub mod cgroup_path;
pub mod convert;
pub mod device_rules;
mod fsutil;
pub mod layout;
pub mod oom;
mod preexisting;
pub mod stats;
pub mod sub_cgroup;
mod v1;
mod v1_resources;
mod v2;
mod v2_resources;
pub mod warmup;

#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_v2;

pub use layout::{detect_layout, Layout};
pub use oom::{OomEvent, OomNotifier};
pub use stats::Stats;
pub use v1::V1;
pub use v2::V2;

use anyhow::{Context, Result};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which hierarchy the manager drives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum Backend {
    V1(V1),
    V2(V2),
}

/// A container's cgroups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    pub layout: Layout,
    pub backend: Backend,
    #[serde(default)]
    pub rootless: bool,
}

impl Manager {
    /// cgroupsPath as runc reads it: absolute ("/a/b" under each controller's root), relative
    /// (under the caller's own cgroup for each controller; on v2 under its parent), empty or
    /// None: the container id, relative. `systemd`: "slice:prefix:name" via systemd over D-Bus,
    /// which this build does not have: always an error that says why.
    pub fn new(
        cgroups_path: Option<&str>,
        id: &str,
        systemd: bool,
        rootless: bool,
    ) -> Result<Manager> {
        if systemd {
            cgroup_path::systemd_driver(cgroups_path, id)?;
        }
        let inner = cgroup_path::inner_path(cgroups_path, id)?;
        let layout = detect_layout()?;
        let own = layout::own_cgroups()?;
        let backend = match layout {
            Layout::V2 => Backend::V2(V2::new(
                Path::new(layout::CGROUP_ROOT),
                own.get("").map(String::as_str).unwrap_or("/"),
                &inner,
            )),
            Layout::V1 | Layout::Hybrid => {
                let unified =
                    (layout == Layout::Hybrid).then(|| Path::new(layout::UNIFIED_MOUNTPOINT));
                Backend::V1(V1::new(&layout::v1_mounts()?, &own, &inner, unified)?)
            }
        };
        Ok(Manager {
            layout,
            backend,
            rootless,
        })
    }

    /// The cgroups a running process is in, read from `/proc/<pid>/cgroup` (the shim finds
    /// a container's cgroups this way: it did not create them). The directories are taken as
    /// they are; nothing is created. v1 and hybrid hosts: every controller the process is in
    /// that is mounted here; v2: the one directory.
    pub fn for_pid(pid: u32) -> Result<Manager> {
        Manager::from_proc_file(&format!("/proc/{pid}/cgroup"))
    }

    /// [`Manager::for_pid`] for the calling thread (`/proc/thread-self/cgroup`).
    pub(super) fn for_this_thread() -> Result<Manager> {
        Manager::from_proc_file("/proc/thread-self/cgroup")
    }

    fn from_proc_file(p: &str) -> Result<Manager> {
        let text = std::fs::read_to_string(p).with_context(|| format!("read {p}"))?;
        let layout = detect_layout()?;
        let mounts = match layout {
            Layout::V2 => BTreeMap::new(),
            Layout::V1 | Layout::Hybrid => layout::v1_mounts()?,
        };
        Ok(Manager::from_proc_cgroup(
            layout,
            &layout::parse_proc_cgroup(&text),
            &mounts,
            Path::new(layout::CGROUP_ROOT),
        ))
    }

    /// [`Manager::for_pid`] from a parsed /proc/PID/cgroup, the v1 mounts and the v2 root.
    fn from_proc_cgroup(
        layout: Layout,
        cgroups: &BTreeMap<String, String>,
        mounts: &BTreeMap<String, layout::V1Mount>,
        v2_root: &Path,
    ) -> Manager {
        let unified = cgroups.get("").map(String::as_str).unwrap_or("/");
        let backend = match layout {
            Layout::V2 => Backend::V2(V2 {
                root: v2_root.to_path_buf(),
                path: layout::join_under(v2_root, unified),
            }),
            Layout::V1 | Layout::Hybrid => {
                let mut paths = BTreeMap::new();
                let mut mps = BTreeMap::new();
                for (c, cg) in cgroups {
                    let Some(m) = mounts.get(c) else { continue };
                    // Relative to the root of this mount ("/" on the host).
                    let rel = cg.strip_prefix(m.root.as_str()).unwrap_or(cg);
                    paths.insert(c.clone(), layout::join_under(&m.mountpoint, rel));
                    mps.insert(c.clone(), m.mountpoint.clone());
                }
                let unified = (layout == Layout::Hybrid)
                    .then(|| layout::join_under(Path::new(layout::UNIFIED_MOUNTPOINT), unified));
                Backend::V1(V1 {
                    paths,
                    mounts: mps,
                    unified,
                })
            }
        };
        Manager {
            layout,
            backend,
            rootless: false,
        }
    }

    /// A v2 manager on an explicit hierarchy root (tests use a fake tree; also useful when the
    /// cgroup2 filesystem is mounted somewhere else).
    pub fn v2_at(root: &Path, cgroups_path: Option<&str>, id: &str) -> Result<Manager> {
        let inner = cgroup_path::inner_path(cgroups_path, id)?;
        Ok(Manager {
            layout: Layout::V2,
            backend: Backend::V2(V2::new(root, "/", &inner)),
            rootless: false,
        })
    }

    /// Create the directories and move `pid` into them.
    pub fn apply(&self, pid: i32) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.apply(pid, self.rootless),
            Backend::V2(c) => c.apply(pid, self.rootless),
        }
        .with_context(|| format!("apply cgroup configuration to pid {}", pid))
    }

    /// Write every resource in `r`.
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        self.set_resources(r, false)
    }

    /// As [`Manager::set`], for a running container (`runc update`): honours
    /// memory.checkBeforeUpdate.
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.set_resources(r, true)
    }

    fn set_resources(&self, r: &LinuxResources, update: bool) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => v1_resources::set(c, r, self.rootless, update),
            Backend::V2(c) => v2_resources::set(c, r, self.rootless, update),
        }
        .context("set cgroup resources")
    }

    /// Every pid in the cgroup and below it.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.backend {
            Backend::V1(c) => c.pids(),
            Backend::V2(c) => c.pids(),
        }
    }

    pub fn freeze(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.freeze(),
            Backend::V2(c) => c.freeze(),
        }
        .context("freeze cgroup")
    }

    pub fn thaw(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.thaw(),
            Backend::V2(c) => c.thaw(),
        }
        .context("thaw cgroup")
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match &self.backend {
            Backend::V1(c) => c.is_frozen(),
            Backend::V2(c) => c.is_frozen(),
        }
    }

    /// Usage statistics in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats> {
        match &self.backend {
            Backend::V1(c) => c.stats(),
            Backend::V2(c) => c.stats(),
        }
        .context("read cgroup stats")
    }

    /// Start watching for OOM kills.
    pub fn oom_notifier(&self) -> Result<OomNotifier> {
        match &self.backend {
            Backend::V1(c) => OomNotifier::v1(
                c.path("memory")
                    .context("OOM notification: no memory cgroup")?,
            ),
            Backend::V2(c) => OomNotifier::v2(&c.path),
        }
    }

    /// Remove every directory of this cgroup (and cgroups below it). Already gone is fine.
    pub fn destroy(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.destroy(),
            Backend::V2(c) => c.destroy(),
        }
    }

    pub fn exists(&self) -> bool {
        match &self.backend {
            Backend::V1(c) => c.exists(),
            Backend::V2(c) => c.exists(),
        }
    }

    /// Controller name to directory ("" for the unified directory on v2 and hybrid), e.g. for
    /// mounting the container's cgroups inside it.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        match &self.backend {
            Backend::V1(c) => {
                let mut m = c.paths.clone();
                if let Some(u) = &c.unified {
                    m.insert(String::new(), u.clone());
                }
                m
            }
            Backend::V2(c) => BTreeMap::from([(String::new(), c.path.clone())]),
        }
    }
}

#[cfg(test)]
mod for_pid_tests {
    use super::*;

    #[test]
    fn v1_paths_from_proc_cgroup_under_each_mount() {
        let mounts = layout::parse_v1_mounts(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let cg =
            layout::parse_proc_cgroup("4:memory:/default/c1\n3:cpu,cpuacct:/default/c1\n0::/x\n");
        let m = Manager::from_proc_cgroup(Layout::Hybrid, &cg, &mounts, Path::new("/unused"));
        let p = m.paths();
        assert_eq!(
            p["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/default/c1")
        );
        assert_eq!(
            p["cpuacct"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/default/c1")
        );
        assert_eq!(p[""], PathBuf::from("/sys/fs/cgroup/unified/x"));
        assert!(!p.contains_key("pids"), "not mounted: not joined");
    }

    #[test]
    fn v2_path_from_proc_cgroup() {
        let cg = layout::parse_proc_cgroup("0::/default/c1\n");
        let m = Manager::from_proc_cgroup(Layout::V2, &cg, &BTreeMap::new(), Path::new("/cg"));
        assert_eq!(m.paths()[""], PathBuf::from("/cg/default/c1"));
    }

    #[test]
    fn this_process() {
        let m = Manager::for_pid(std::process::id()).unwrap();
        assert!(m.exists());
    }
}
