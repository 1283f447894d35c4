//! Who runs the runtime, as runc 1.1 decides it: where the state lives when no `--root`
//! is given, and whether cgroup permission errors are ignored (`--rootless`).
//!
//! runc's rules (main.go, rootless_linux.go): a non-root user, or uid 0 inside a user
//! namespace that is not the host's (rootless Podman) unless `$USER` is "root", keeps its
//! state in `$XDG_RUNTIME_DIR/runc` (mode 0700 plus the sticky bit, so the XDG cleaner
//! leaves it alone); the real root uses /run/runc. `--rootless auto` counts both as
//! rootless for cgroups, except uid 0 in the host's user namespace or a systemd cgroup
//! manager.

use anyhow::{bail, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// True when this process is not in the host's user namespace (its uid map is not the
/// identity map of every id).
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `$XDG_RUNTIME_DIR`, when runc would keep its state there.
fn xdg_runtime_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    let honor = euid() != 0
        || (in_user_namespace() && std::env::var_os("USER").is_none_or(|u| u != "root"));
    honor.then(|| PathBuf::from(dir))
}

/// The state root without `--root`: `/run/<name>` for the real root, else
/// `$XDG_RUNTIME_DIR/<name>` (made 0700 with the sticky bit, as runc makes it). `name` is
/// "runc" when invoked as runc, "ocibox" otherwise.
pub fn default_root(name: &str) -> Result<PathBuf> {
    let Some(xdg) = xdg_runtime_dir() else {
        return Ok(PathBuf::from("/run").join(name));
    };
    let root = xdg.join(name);
    std::fs::create_dir_all(&root).map_err(|e| anyhow::anyhow!("mkdir {}: {e}", root.display()))?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1700))
        .map_err(|e| anyhow::anyhow!("chmod {}: {e}", root.display()))?;
    Ok(root)
}

/// `--rootless VALUE`: whether cgroup permission errors are ignored (when the container
/// asks for no resources). "auto" or no flag decides as runc does.
pub fn rootless_cgroups(flag: Option<&str>, systemd_cgroup: bool) -> Result<bool> {
    match flag.unwrap_or("auto") {
        "" | "auto" => {}
        "1" | "t" | "T" | "true" | "TRUE" | "True" => return Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => return Ok(false),
        other => bail!("invalid --rootless value {other:?}: must be true, false or auto"),
    }
    if systemd_cgroup {
        // runc asks systemd's user bus who owns it; without one it assumes root.
        return Ok(false);
    }
    Ok(euid() != 0 || in_user_namespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_rootless_values() {
        assert!(rootless_cgroups(Some("true"), false).unwrap());
        assert!(!rootless_cgroups(Some("0"), false).unwrap());
        assert!(rootless_cgroups(Some("maybe"), false).is_err());
        assert!(!rootless_cgroups(None, true).unwrap());
    }
}
