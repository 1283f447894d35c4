//! The cgroup v2 backend: one directory in the unified hierarchy. The hierarchy root is a
//! field, so tests can point it at a fake tree in a temporary directory.

use super::fsutil::{read_file, read_procs_recursive, remove_cgroup_dir, write_file};
use super::stats::{self, Stats};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct V2 {
    /// Mount point of the unified hierarchy (/sys/fs/cgroup).
    pub root: PathBuf,
    /// The container's cgroup directory, below `root`.
    pub path: PathBuf,
}

impl V2 {
    /// `inner` is the cleaned cgroupsPath; `own` is our cgroup2 path from /proc/self/cgroup.
    /// A relative path goes below the *parent* of our own cgroup, as in runc: our own cgroup
    /// has processes in it, so it cannot enable controllers for children (no internal tasks).
    pub fn new(root: &Path, own: &str, inner: &str) -> V2 {
        use super::layout::join_under;
        let base = if inner.starts_with('/') {
            root.to_path_buf()
        } else {
            let parent = Path::new(own)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".to_string());
            join_under(root, &parent)
        };
        V2 {
            root: root.to_path_buf(),
            path: join_under(&base, inner),
        }
    }

    /// Create the directory level by level, enabling at every level above it the controllers
    /// its parent offers (cgroup.controllers into cgroup.subtree_control), then move `pid` in.
    pub fn apply(&self, pid: i32, rootless: bool) -> Result<()> {
        let rel = self.path.strip_prefix(&self.root).with_context(|| {
            format!(
                "cgroup {} is not below {}",
                self.path.display(),
                self.root.display()
            )
        })?;
        let mut cur = self.root.clone();
        for comp in rel.components() {
            enable_controllers(&cur, rootless)?;
            cur.push(comp);
            if let Err(e) = std::fs::create_dir(&cur) {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e).with_context(|| format!("create cgroup {}", cur.display()));
                }
            }
        }
        write_file(&self.path, "cgroup.procs", &pid.to_string())
            .with_context(|| format!("join pid {} to cgroup", pid))
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn destroy(&self) -> Result<()> {
        remove_cgroup_dir(&self.path)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        read_procs_recursive(&self.path, &mut out)?;
        Ok(out)
    }

    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        if !self.path.join("cgroup.freeze").exists() {
            bail!("cgroup v2 freezer is not supported by this kernel (cgroup.freeze is missing)");
        }
        write_file(&self.path, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        // The write returns before every task has stopped: wait for cgroup.events to agree.
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for attempt in 0..1000 {
            let ev = read_file(&self.path, "cgroup.events")?;
            if ev.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(if attempt < 10 {
                1
            } else {
                10
            }));
        }
        if frozen {
            let _ = write_file(&self.path, "cgroup.freeze", "0");
        }
        bail!(
            "cgroup {}: {} did not take effect",
            self.path.display(),
            want
        )
    }

    pub fn is_frozen(&self) -> Result<bool> {
        if !self.path.join("cgroup.freeze").exists() {
            return Ok(false);
        }
        Ok(read_file(&self.path, "cgroup.freeze")?.trim() == "1")
    }

    pub fn stats(&self) -> Result<Stats> {
        let d = &self.path;
        let mut s = Stats::default();
        stats::v2_cpu(d, &mut s.cpu).context("cpu stats")?;
        stats::v2_memory(d, &mut s.memory).context("memory stats")?;
        stats::pids(d, &mut s.pids).context("pids stats")?;
        stats::v2_io(d, &mut s.blkio).context("io stats")?;
        stats::v2_hugetlb(d, &mut s.hugetlb).context("hugetlb stats")?;
        Ok(s)
    }
}

/// Enable in `dir`'s cgroup.subtree_control every controller listed in its cgroup.controllers.
/// All at once first; when the kernel refuses one (e.g. cpu with realtime tasks around), one by
/// one, keeping what works (as runc does).
fn enable_controllers(dir: &Path, rootless: bool) -> Result<()> {
    let avail = match read_file(dir, "cgroup.controllers") {
        Ok(s) => s,
        Err(_) if rootless => return Ok(()),
        Err(e) => return Err(e),
    };
    let ctrls: Vec<String> = avail
        .split_whitespace()
        .map(|c| format!("+{}", c))
        .collect();
    if ctrls.is_empty() {
        return Ok(());
    }
    if write_file(dir, "cgroup.subtree_control", &ctrls.join(" ")).is_ok() {
        return Ok(());
    }
    for c in &ctrls {
        let _ = write_file(dir, "cgroup.subtree_control", c);
    }
    Ok(())
}
