//! The container's state directory `<root>/<id>/`: `state.json` and `exec.fifo`.
//!
//! state.json is written atomically (temp file + rename) so a reader never sees half of it.

use super::id::ContainerId;
use super::status::is_same_process;
use crate::linux::cgroups;
use crate::oci::state::{OciState, Status};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// What ocibox keeps about a container between invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: ContainerId,
    /// The container's init process as the host sees it.
    pub pid: i32,
    /// Its start time, so that a recycled pid is never taken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub config: Spec,
    pub cgroup: Option<cgroups::Manager>,
    #[serde(default)]
    pub rootless: bool,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

pub fn container_dir(root: &Path, id: &ContainerId) -> PathBuf {
    root.join(id)
}

impl State {
    pub fn dir(&self, root: &Path) -> PathBuf {
        container_dir(root, &self.id)
    }

    /// Load `<root>/<id>/state.json`; "container does not exist" when there is none.
    pub fn load(root: &Path, id: &ContainerId) -> Result<State> {
        let path = container_dir(root, id).join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "state file {} is corrupt (delete --force removes the container)",
                path.display()
            )
        })
    }

    /// Write state.json atomically (temp file, then rename).
    pub fn save(&self, root: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).context("serialize state")?;
        write_atomic(&self.dir(root), STATE_FILE, &data)
    }

    /// True while the init process is the one we started.
    pub fn is_alive(&self) -> bool {
        is_same_process(self.pid, self.pid_start_time)
    }

    /// created (blocked on the exec fifo), running, paused or stopped.
    pub fn status(&self, root: &Path) -> Status {
        if !self.is_alive() {
            return Status::Stopped;
        }
        if self.dir(root).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.config.version().clone(),
            id: self.id.to_string(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.annotations.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// Write `<dir>/<name>` atomically: a temp file, then rename, so a reader (or a runtime
/// killed half-way through the write) never leaves half a file.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    // No fsync: the state lives in a tmpfs (/run) and means nothing after a reboot;
    // the rename alone keeps readers from ever seeing half a file.
    f.write_all(data)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name))
        .with_context(|| format!("rename {} into place", tmp.display()))
}

/// Make the root directory (0700, like runc) and the container's own directory (0711).
/// Fails when the container already exists.
pub fn make_container_dir(root: &Path, id: &ContainerId) -> Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("create root directory {}", root.display()))?;
    let dir = container_dir(root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => Err(e).with_context(|| format!("create {}", dir.display())),
    }
}

/// Every container id under root, sorted, skipping entries that are not containers
/// (no state.json, or a name that is not a container id).
pub fn list_ids(root: &Path) -> Result<Vec<ContainerId>> {
    Ok(list_dirs(root)?
        .into_iter()
        .filter(|id| container_dir(root, id).join(STATE_FILE).exists())
        .collect())
}

/// Every directory under root whose name is a container id, sorted: what `runc list` tries
/// to load (and warns about when it cannot).
pub fn list_dirs(root: &Path) -> Result<Vec<ContainerId>> {
    let mut ids = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(id) = e
            .file_name()
            .to_str()
            .and_then(|n| ContainerId::parse(n).ok())
        {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}
