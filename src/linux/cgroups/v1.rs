//! The cgroup v1 backend (also used on hybrid hosts): one directory per mounted controller
//! hierarchy, plus on hybrid hosts a directory in the cgroup2 hierarchy joined best effort
//! (as runc does), so tools that look at the unified hierarchy find the container.

use super::fsutil::{read_file, read_procs_recursive, remove_cgroup_dir, write_file};
use super::layout::{join_under, V1Mount};
use super::stats::{self, Stats};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct V1 {
    /// Controller ("memory", "cpu", "name=systemd", …) to the container's directory in that
    /// controller's hierarchy; co-mounted controllers share a directory.
    pub paths: BTreeMap<String, PathBuf>,
    /// Mount point of each controller's hierarchy (where cpuset inheritance stops).
    pub mounts: BTreeMap<String, PathBuf>,
    /// Hybrid hosts: the directory in the cgroup2 hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
}

/// Controllers a container joins: every v1 controller plus the named systemd hierarchy;
/// missing ones are skipped (except that setting a limit for a missing controller is an
/// error, as in runc).
fn joined() -> impl Iterator<Item = &'static str> {
    super::layout::KNOWN_V1_CONTROLLERS
        .iter()
        .copied()
        .chain(std::iter::once("name=systemd"))
}

impl V1 {
    /// Compute the directories for `inner` (a cleaned cgroupsPath, absolute or relative).
    /// `own` is this process's /proc/self/cgroup; `unified` the cgroup2 mount on hybrid hosts.
    pub fn new(
        mounts: &BTreeMap<String, V1Mount>,
        own: &BTreeMap<String, String>,
        inner: &str,
        unified: Option<&Path>,
    ) -> Result<V1> {
        let mut paths = BTreeMap::new();
        let mut mps = BTreeMap::new();
        for c in joined() {
            let Some(m) = mounts.get(c) else { continue };
            let base = if inner.starts_with('/') {
                m.mountpoint.clone()
            } else {
                let mine = own.get(c).map(String::as_str).unwrap_or("/");
                // Our cgroup relative to the root of this mount (not "/" inside a container).
                let rel = mine.strip_prefix(m.root.as_str()).unwrap_or(mine);
                join_under(&m.mountpoint, rel)
            };
            paths.insert(c.to_string(), join_under(&base, inner));
            mps.insert(c.to_string(), m.mountpoint.clone());
        }
        if !paths.contains_key("devices") {
            // runc refuses to run without the devices controller: it is a security boundary.
            bail!("cgroup v1 devices controller is not mounted");
        }
        let unified = unified.map(|u| {
            let base = if inner.starts_with('/') {
                u.to_path_buf()
            } else {
                join_under(u, own.get("").map(String::as_str).unwrap_or("/"))
            };
            join_under(&base, inner)
        });
        Ok(V1 {
            paths,
            mounts: mps,
            unified,
        })
    }

    pub fn path(&self, controller: &str) -> Option<&Path> {
        self.paths.get(controller).map(PathBuf::as_path)
    }

    fn unique_paths(&self) -> Vec<(&str, &Path)> {
        let mut seen = std::collections::BTreeSet::new();
        self.paths
            .iter()
            .filter(|(_, p)| seen.insert(p.as_path()))
            .map(|(c, p)| (c.as_str(), p.as_path()))
            .collect()
    }

    /// Create every directory and move `pid` into it.
    pub fn apply(&self, pid: i32, rootless: bool) -> Result<()> {
        for (c, dir) in self.unique_paths() {
            let res = (|| -> Result<()> {
                if c == "cpuset" {
                    let mp = self.mounts.get(c).map(PathBuf::as_path).unwrap_or(dir);
                    create_cpuset_dirs(mp, dir)?;
                } else {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("create cgroup {}", dir.display()))?;
                }
                write_file(dir, "cgroup.procs", &pid.to_string())
                    .with_context(|| format!("join pid {} to {} cgroup", pid, c))
            })();
            if let Err(e) = res {
                if rootless && is_permission_error(&e) {
                    continue;
                }
                return Err(e);
            }
        }
        if let Some(u) = &self.unified {
            // Best effort as in runc: the unified hierarchy of a hybrid host is informational.
            if std::fs::create_dir_all(u).is_ok() {
                let _ = write_file(u, "cgroup.procs", &pid.to_string());
            }
        }
        Ok(())
    }

    pub fn exists(&self) -> bool {
        self.paths.values().any(|p| p.exists())
    }

    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        let dirs = self.unique_paths().into_iter().map(|(_, p)| p);
        for dir in dirs.chain(self.unified.as_deref()) {
            if let Err(e) = remove_cgroup_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn any_path(&self) -> Result<&Path> {
        ["freezer", "devices", "memory", "pids"]
            .iter()
            .find_map(|c| self.path(c))
            .or_else(|| self.paths.values().next().map(PathBuf::as_path))
            .ok_or_else(|| anyhow!("no cgroup v1 controller is available"))
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        read_procs_recursive(self.any_path()?, &mut out)?;
        Ok(out)
    }

    fn freezer(&self) -> Result<&Path> {
        self.path("freezer")
            .ok_or_else(|| anyhow!("cgroup v1 freezer controller is not mounted"))
    }

    pub fn freeze(&self) -> Result<()> {
        let dir = self.freezer()?;
        // Freezing can stall in FREEZING when a task is in an uninterruptible state; runc
        // retries by thawing and freezing again.
        for attempt in 0..1000 {
            if attempt % 50 == 49 {
                write_file(dir, "freezer.state", "THAWED")?;
            }
            write_file(dir, "freezer.state", "FROZEN")?;
            if read_file(dir, "freezer.state")?.trim() == "FROZEN" {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(if attempt < 10 {
                1
            } else {
                10
            }));
        }
        let _ = write_file(dir, "freezer.state", "THAWED");
        bail!("unable to freeze {}: tasks did not stop", dir.display())
    }

    pub fn thaw(&self) -> Result<()> {
        write_file(self.freezer()?, "freezer.state", "THAWED")
    }

    pub fn is_frozen(&self) -> Result<bool> {
        let Some(dir) = self.path("freezer") else {
            return Ok(false);
        };
        // The parent can be frozen too; self_freezing tells about this cgroup, state about both.
        Ok(read_file(dir, "freezer.state")?.trim() != "THAWED")
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        stats::v1_cpu(self.path("cpu"), self.path("cpuacct"), &mut s.cpu).context("cpu stats")?;
        if let Some(d) = self.path("memory") {
            stats::v1_memory(d, &mut s.memory).context("memory stats")?;
        }
        if let Some(d) = self.path("pids") {
            stats::pids(d, &mut s.pids).context("pids stats")?;
        }
        if let Some(d) = self.path("blkio") {
            stats::v1_blkio(d, &mut s.blkio).context("blkio stats")?;
        }
        if let Some(d) = self.path("hugetlb") {
            stats::v1_hugetlb(d, &mut s.hugetlb).context("hugetlb stats")?;
        }
        Ok(s)
    }
}

fn is_permission_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            )
        })
    })
}

/// Create `dir` level by level below the cpuset mount, filling empty cpuset.cpus/mems from the
/// parent: a task cannot join a cpuset cgroup whose cpus or mems are empty.
fn create_cpuset_dirs(mountpoint: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(mountpoint).unwrap_or(Path::new(""));
    let mut cur = mountpoint.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        if let Err(e) = std::fs::create_dir(&cur) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e).with_context(|| format!("create cgroup {}", cur.display()));
            }
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&cur, f)?.trim().is_empty() {
                let v = read_file(&parent, f)?;
                write_file(&cur, f, v.trim())
                    .with_context(|| format!("copy {} from parent cgroup", f))?;
            }
        }
    }
    Ok(())
}
