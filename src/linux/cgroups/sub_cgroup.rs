//! `runc exec --cgroup`: run the new process in an existing sub-cgroup of the container's
//! cgroup, as runc 1.1 does. Arguments are `[<controller>[,<controller>…]:]<path>`; a path
//! without a controller (or with an empty one) is for every controller, and is only allowed
//! alone; `a:b:c` is refused. The path is taken below the container's directory and may not
//! leave it; the directories must exist already (exec never creates cgroups).

use super::{Backend, Manager};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Controller ("" for all) to the sub path, from the `--cgroup` arguments in order (a
/// controller named twice: the last one wins, as runc 1.1.5 does it).
pub fn parse_sub_cgroup_args(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        let parts: Vec<&str> = a.splitn(3, ':').collect();
        match parts[..] {
            [path] => {
                if args.len() != 1 {
                    bail!("invalid --cgroup argument: {a} (missing <controller>: prefix)");
                }
                out.insert(String::new(), path.to_string());
            }
            [ctrls, path] => {
                for c in ctrls.split(',') {
                    out.insert(c.to_string(), path.to_string());
                }
            }
            _ => bail!("invalid --cgroup argument: {a}"),
        }
    }
    Ok(out)
}

/// `base/sub`, lexically, refusing a `sub` that climbs out of `base`.
fn below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                if !rel.pop() {
                    bail!("{sub} is not a sub cgroup path");
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(base.join(rel))
}

fn existing(dir: PathBuf) -> Result<PathBuf> {
    if !dir.join("cgroup.procs").exists() {
        bail!(
            "error adding pid to cgroups: {}/cgroup.procs: no such file or directory",
            dir.display()
        );
    }
    Ok(dir)
}

impl Manager {
    /// This manager moved to the sub-cgroups `subs` names (see [`parse_sub_cgroup_args`]).
    /// As runc: a path for every controller ("") wins over per-controller ones and also
    /// moves a hybrid host's unified directory; a named controller must be one the container
    /// has (on v2 there is none to name).
    pub fn sub_cgroup(&self, subs: &BTreeMap<String, String>) -> Result<Manager> {
        let mut m = self.clone();
        let all = subs.get("");
        let unknown = |k: &str| anyhow::anyhow!("unknown controller {k} in SubCgroupPaths");
        match &mut m.backend {
            Backend::V1(c) => {
                if all.is_none() {
                    if let Some(bad) = subs.keys().find(|k| !c.paths.contains_key(*k)) {
                        return Err(unknown(bad));
                    }
                }
                for (ctrl, dir) in c.paths.iter_mut() {
                    if let Some(sub) = all.or_else(|| subs.get(ctrl)) {
                        *dir = existing(below(dir, sub)?)?;
                    }
                }
                if let (Some(u), Some(sub)) = (c.unified.as_mut(), all) {
                    *u = existing(below(u, sub)?)?;
                }
            }
            Backend::V2(c) => match all {
                Some(sub) => c.path = existing(below(&c.path, sub)?)?,
                None => {
                    if let Some(k) = subs.keys().next() {
                        return Err(unknown(k));
                    }
                }
            },
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<BTreeMap<String, String>> {
        parse_sub_cgroup_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_as_runc_reads_them() {
        assert_eq!(
            args(&["sub"]).unwrap(),
            BTreeMap::from([("".into(), "sub".into())])
        );
        assert_eq!(
            args(&["memory:m", "pids,freezer:p"]).unwrap(),
            BTreeMap::from([
                ("memory".into(), "m".into()),
                ("pids".into(), "p".into()),
                ("freezer".into(), "p".into())
            ])
        );
        assert_eq!(
            args(&[":x"]).unwrap(),
            BTreeMap::from([("".into(), "x".into())])
        );
        assert_eq!(
            args(&["a:b:c"]).unwrap_err().to_string(),
            "invalid --cgroup argument: a:b:c"
        );
        assert_eq!(
            args(&["sub", "memory:m"]).unwrap_err().to_string(),
            "invalid --cgroup argument: sub (missing <controller>: prefix)"
        );
    }

    #[test]
    fn paths_stay_below_the_container() {
        let base = Path::new("/sys/fs/cgroup/memory/ct");
        assert_eq!(below(base, "a/b").unwrap(), base.join("a/b"));
        assert_eq!(below(base, "/a/../b").unwrap(), base.join("b"));
        assert_eq!(
            below(base, "../..").unwrap_err().to_string(),
            "../.. is not a sub cgroup path"
        );
    }

    #[test]
    fn v2_takes_one_existing_path_without_controller() {
        let root = std::env::temp_dir().join(format!("ocibox-subcg-{}", std::process::id()));
        std::fs::create_dir_all(root.join("ct/sub")).unwrap();
        std::fs::write(root.join("ct/sub/cgroup.procs"), "").unwrap();
        let m = Manager::v2_at(&root, Some("/ct"), "id").unwrap();
        let res = (
            m.sub_cgroup(&args(&["sub"]).unwrap()).map(|m| m.paths()),
            m.sub_cgroup(&args(&["memory:sub"]).unwrap()),
            m.sub_cgroup(&args(&["nosub"]).unwrap()),
        );
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(res.0.unwrap()[""], root.join("ct/sub"));
        assert_eq!(
            res.1.unwrap_err().to_string(),
            "unknown controller memory in SubCgroupPaths"
        );
        assert!(res.2.unwrap_err().to_string().contains("no such file"));
    }
}
