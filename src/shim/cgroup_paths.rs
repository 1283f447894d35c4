//! Where a process's cgroups are: read from `/proc/<pid>/cgroup`, for the cgroup v1
//! controllers (hybrid hosts included) or the unified v2 hierarchy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directories of one process.
pub enum CgroupPaths {
    /// v1: controller name → directory.
    V1(HashMap<String, PathBuf>),
    /// v2: the one directory.
    V2(PathBuf),
}

/// Whether the host's /sys/fs/cgroup is the unified (v2-only) hierarchy.
pub fn is_unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

impl CgroupPaths {
    pub fn of_pid(pid: u32) -> Result<CgroupPaths> {
        let p = format!("/proc/{pid}/cgroup");
        let text = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
        Ok(CgroupPaths::parse(&text, is_unified()))
    }

    fn parse(text: &str, unified: bool) -> CgroupPaths {
        let mut v1 = HashMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if ctrls.is_empty() {
                if unified {
                    return CgroupPaths::V2(Path::new(CGROUP_ROOT).join(rel));
                }
                continue;
            }
            for c in ctrls.split(',') {
                let c = c.trim_start_matches("name=");
                // A co-mounted hierarchy (cpu,cpuacct) sits under its joined name.
                let mut dir = Path::new(CGROUP_ROOT).join(c);
                if !dir.exists() {
                    dir = Path::new(CGROUP_ROOT).join(ctrls);
                }
                v1.insert(c.to_string(), dir.join(rel));
            }
        }
        CgroupPaths::V1(v1)
    }

    /// The v1 directory of `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        match self {
            CgroupPaths::V1(m) => m.get(controller).map(|p| p.as_path()),
            CgroupPaths::V2(_) => None,
        }
    }
}

/// A cgroup file as an unsigned number ("max" is u64::MAX); 0 when absent.
pub fn read_u64(dir: &Path, file: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| {
            let s = s.trim();
            if s == "max" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        })
        .unwrap_or(0)
}

/// A flat keyed file (`key value` lines) as a map.
pub fn read_keyed(dir: &Path, file: &str) -> HashMap<String, u64> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_lines() {
        let t = "12:memory:/default/c1\n4:pids:/default/c1\n0::/default/c1\n";
        let p = CgroupPaths::parse(t, false);
        assert_eq!(
            p.v1("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/default/c1"))
        );
        match CgroupPaths::parse(t, true) {
            CgroupPaths::V2(d) => assert_eq!(d, Path::new("/sys/fs/cgroup/default/c1")),
            CgroupPaths::V1(_) => panic!("expected v2"),
        }
    }
}
