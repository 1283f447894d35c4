//! runc's checks on a container cgroup that exists before `create`: a frozen one is refused
//! (the init would be frozen on joining it and `create` would wait for it forever), one with
//! processes in it is used with a warning (runc 1.1; runc 1.2 refuses it).
//!
//! As in runc these run before anything is created, so a refused cgroup is left exactly as
//! the caller made it.

use super::fsutil::read_file;
use super::{Backend, Manager};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// runc 1.1's words, which callers grep for.
pub const FROZEN: &str = "container's cgroup unexpectedly frozen";
pub const DEPRECATED_NON_EMPTY: &str = "DEPRECATED: running container in a non-empty cgroup won't be supported in runc 1.2; https://github.com/opencontainers/runc/issues/3132";

impl Manager {
    /// Refuse a frozen cgroup; return the warnings runc prints for a non-empty one (the
    /// caller logs them, so this module stays free of the runtime's log).
    pub fn check_preexisting(&self) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if self.exists() {
            // Reading pids races with the removal of the cgroup: gone is empty.
            let n = match self.pids() {
                Ok(p) => p.len(),
                Err(e) if is_gone(&e) => 0,
                Err(e) => return Err(e).context("unable to get cgroup PIDs"),
            };
            if n != 0 {
                warnings.push(format!(
                    "container's cgroup is not empty: {n} process(es) found"
                ));
                warnings.push(DEPRECATED_NON_EMPTY.to_string());
            }
        }
        let frozen = match &self.backend {
            Backend::V1(c) => c.path("freezer").map(v1_frozen_itself).transpose(),
            Backend::V2(c) => Some(v2_frozen(&c.path)).transpose(),
        }
        .context("unable to get cgroup freezer state")?;
        if frozen == Some(true) {
            bail!(FROZEN);
        }
        Ok(warnings)
    }
}

fn is_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::NotFound || io.raw_os_error() == Some(libc::ENODEV)
        })
    })
}

/// v1: FROZEN by this cgroup itself (`freezer.self_freezing` 1). A cgroup frozen only through
/// a frozen parent counts as thawed, as in runc. FREEZING is a passing state: read again.
fn v1_frozen_itself(dir: &Path) -> Result<bool> {
    if !dir.join("freezer.state").exists() {
        return Ok(false);
    }
    for _ in 0..1000 {
        match read_file(dir, "freezer.state")?.trim() {
            "FROZEN" => return Ok(read_file(dir, "freezer.self_freezing")?.trim() == "1"),
            "FREEZING" => std::thread::sleep(std::time::Duration::from_millis(1)),
            _ => return Ok(false),
        }
    }
    bail!("{}: freezer.state stays FREEZING", dir.display())
}

/// v2: `cgroup.freeze` is 1 (missing: no freezer, or no such cgroup yet).
fn v2_frozen(dir: &Path) -> Result<bool> {
    if !dir.join("cgroup.freeze").exists() {
        return Ok(false);
    }
    Ok(read_file(dir, "cgroup.freeze")?.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_frozen_is_refused_and_busy_is_warned_about() {
        let root = std::env::temp_dir().join(format!("ocibox-precg-{}", std::process::id()));
        let dir = root.join("ct");
        std::fs::create_dir_all(&dir).unwrap();
        let m = Manager::v2_at(&root, Some("/ct"), "id").unwrap();
        let write = |f: &str, v: &str| std::fs::write(dir.join(f), v).unwrap();
        write("cgroup.procs", "");
        write("cgroup.freeze", "0");
        let empty = m.check_preexisting().map_err(|e| e.to_string());
        write("cgroup.procs", "12\n34\n");
        let busy = m.check_preexisting().map_err(|e| e.to_string());
        write("cgroup.freeze", "1");
        let frozen = m.check_preexisting().map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(empty, Ok(vec![]));
        let busy = busy.unwrap();
        assert_eq!(
            busy[0],
            "container's cgroup is not empty: 2 process(es) found"
        );
        assert_eq!(busy[1], DEPRECATED_NON_EMPTY);
        assert_eq!(frozen, Err(FROZEN.to_string()));
    }

    #[test]
    fn nothing_there_yet_is_fine() {
        let root = std::env::temp_dir().join(format!("ocibox-nocg-{}", std::process::id()));
        let m = Manager::v2_at(&root, Some("/ct"), "id").unwrap();
        assert_eq!(m.check_preexisting().unwrap(), Vec::<String>::new());
    }
}
