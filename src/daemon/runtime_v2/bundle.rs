//! A task's bundle as containerd 1.6 lays it out: `<state>/io.containerd.runtime.v2.task/
//! <ns>/<id>` (0700) holding `config.json` (the container's spec as stored), an empty
//! `rootfs` (the shim mounts the rootfs mounts of Create there), `work` → the task's working
//! directory under the root, and the `log` fifo the shim writes its log to. The shim adds
//! `address`, its pid files and options.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::daemon::config::Config;

/// containerd's runtime v2 plugin directory, under both the root and the state.
pub const TASK_DIR: &str = "io.containerd.runtime.v2.task";

/// The state directory of every bundle.
pub fn state_dir(config: &Config) -> PathBuf {
    config.state.join(TASK_DIR)
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub namespace: String,
    pub id: String,
    pub path: PathBuf,
}

fn mkdir(p: &Path, mode: u32, recursive: bool) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(recursive)
        .mode(mode)
        .create(p)
        .with_context(|| format!("mkdir {}", p.display()))
}

/// The host gid the container's gid 0 maps to, when the spec maps gids (a user namespace).
fn remapped_root_gid(spec: &[u8]) -> Result<Option<u32>> {
    if spec.is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(spec).context("parse the spec")?;
    Ok(v["linux"]["gidMappings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["containerID"].as_u64() == Some(0))
        .and_then(|m| m["hostID"].as_u64())
        .and_then(|g| u32::try_from(g).ok())
        .filter(|&g| g != 0))
}

/// containerd's `prepareBundleDirectoryPermissions`: with a remapped root the bundle goes to
/// that gid, mode 0710, so the container's root can reach its rootfs under it (runc mounts
/// it from inside the user namespace: with the bundle 0700 root's that mount is refused).
fn open_to_remapped_root(path: &Path, spec: &[u8]) -> Result<()> {
    let Some(gid) = remapped_root_gid(spec)? else {
        return Ok(());
    };
    std::os::unix::fs::chown(path, None, Some(gid))
        .with_context(|| format!("chown {} to gid {gid}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o710))
        .with_context(|| format!("chmod {}", path.display()))
}

impl Bundle {
    /// The bundle of `ns`/`id` (made or not).
    pub fn at(config: &Config, ns: &str, id: &str) -> Bundle {
        Bundle {
            namespace: ns.into(),
            id: id.into(),
            path: state_dir(config).join(ns).join(id),
        }
    }

    fn work_dir(config: &Config, ns: &str, id: &str) -> PathBuf {
        config.root.join(TASK_DIR).join(ns).join(id)
    }

    /// Makes the bundle with `spec` (the OCI spec JSON) as config.json. A bundle left
    /// there (a task that died with the daemon and was never cleaned) is replaced.
    pub fn create(config: &Config, ns: &str, id: &str, spec: &[u8]) -> Result<Bundle> {
        let b = Bundle::at(config, ns, id);
        if let Some(parent) = b.path.parent() {
            mkdir(parent, 0o711, true)?;
        }
        if b.path.exists() {
            b.delete()?;
        }
        let made = || -> Result<()> {
            mkdir(&b.path, 0o700, false)?;
            open_to_remapped_root(&b.path, spec)?;
            mkdir(&b.path.join("rootfs"), 0o711, false)?;
            let work = Self::work_dir(config, ns, id);
            if let Some(parent) = work.parent() {
                mkdir(parent, 0o711, true)?;
            }
            let _ = std::fs::remove_dir_all(&work);
            mkdir(&work, 0o711, false)?;
            std::os::unix::fs::symlink(&work, b.path.join("work"))
                .context("symlink the bundle's work directory")?;
            let config_json = b.path.join("config.json");
            std::fs::write(&config_json, spec)
                .with_context(|| format!("write {}", config_json.display()))?;
            let log = b.path.join("log");
            nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o700))
                .with_context(|| format!("mkfifo {}", log.display()))?;
            Ok(())
        };
        if let Err(e) = made() {
            let _ = b.delete();
            return Err(e);
        }
        Ok(b)
    }

    /// The address the shim recorded (`unix:///run/containerd/s/…`).
    pub fn address(&self) -> Result<String> {
        let p = self.path.join("address");
        let a = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        Ok(a.trim().to_string())
    }

    /// Unmounts whatever is left on the rootfs and removes the bundle and its work
    /// directory; a bundle already gone is fine.
    pub fn delete(&self) -> Result<()> {
        let work = std::fs::read_link(self.path.join("work")).ok();
        let rootfs = self.path.join("rootfs");
        unmount_all(&rootfs);
        // Never recurse into a rootfs: if it is still mounted (or not empty), removing the
        // bundle would delete the image's files.
        match std::fs::remove_dir(&rootfs) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("failed to remove bundle rootfs {}", rootfs.display())
                })
            }
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("remove bundle {}", self.path.display()))
            }
        }
        if let Some(w) = work {
            let _ = std::fs::remove_dir_all(w);
        }
        Ok(())
    }
}

/// containerd's `mount.UnmountAll`: unmount `target` until nothing is mounted there.
fn unmount_all(target: &Path) {
    for _ in 0..64 {
        if nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).is_err() {
            return;
        }
    }
}
