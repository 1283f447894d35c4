//! `<state>/<id>/intent.json`: what `create` is about to make, written before it makes it.
//!
//! A `create` killed with -9 half-way, or a container whose state.json was corrupted, must
//! still be removable with `delete -f`: state.json is only written once the init is waiting
//! on exec.fifo, so without this record nothing would know the cgroups or the init of a
//! create that never got that far (runc 1.1 knows nothing either: its `delete -f` removes the
//! state directory and leaves cgroups and the init behind). The record is small, written
//! atomically (temp file + rename) before the cgroup exists, filled in with the init's pid as
//! soon as it is known, and kept for the container's lifetime as a second copy of what
//! removal needs, separate from the big state.json.
//!
//! [`recover`] undoes what a record names: the creating runtime (if it still runs), the init,
//! every process in cgroups the container made, the cgroups, the state directory.

use super::id::ContainerId;
use super::status::{is_same_process, process_start_time};
use crate::linux::cgroups::Manager;
use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const INTENT_FILE: &str = "intent.json";

/// A process named by pid and start time, so a recycled pid is never taken for it.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
}

impl Proc {
    pub fn of(pid: i32) -> Option<Proc> {
        process_start_time(pid).map(|start_time| Proc { pid, start_time })
    }

    pub fn is_alive(&self) -> bool {
        is_same_process(self.pid, self.start_time)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Intent {
    /// The `create` (or `run`) that makes the container.
    pub creator: Proc,
    pub bundle: PathBuf,
    pub cgroup: Option<Manager>,
    /// The cgroup did not exist before this create: every process in it is the container's.
    /// A pre-existing cgroup's other processes are never killed.
    pub cgroup_ours: bool,
    /// The container's init, once create knows it.
    #[serde(default)]
    pub init: Option<Proc>,
}

impl Intent {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).context("serialize intent")?;
        super::state::write_atomic(dir, INTENT_FILE, &data)
    }

    pub fn load(dir: &Path) -> Result<Intent> {
        let path = dir.join(INTENT_FILE);
        let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// A create that is still running (not one that was killed or finished).
    pub fn creator_alive(&self) -> bool {
        self.creator.is_alive() && self.creator.pid != std::process::id() as i32
    }
}

/// The record for a container whose own is missing or unreadable: its cgroups where a
/// container without `cgroupsPath` gets them (the id, under our cgroup), taken as ours.
/// Only used by `delete -f`, as the last thing it can do.
fn fallback(id: &ContainerId) -> Option<Intent> {
    let cgroup = Manager::new(None, id.as_str(), false, false).ok()?;
    Some(Intent {
        creator: Proc::default(),
        bundle: PathBuf::new(),
        cgroup: Some(cgroup),
        cgroup_ours: true,
        init: None,
    })
}

/// Remove everything a broken or half-made container may have left: kill the creating
/// runtime if it still runs (`delete -f` wins over a create it races), the init, every
/// process in the container's own cgroups; remove the cgroups and the state directory.
/// Best effort: what cannot be removed is logged, and the state directory goes last so
/// that a failed attempt can be repeated.
///
/// `guess`: without a readable record, take the cgroups where a container without
/// cgroupsPath gets them. Only `delete -f` of a container whose state.json is corrupt too
/// guesses: a directory with neither file is a create killed before it made anything (the
/// record comes first), and guessing there could hit another runtime root's container of the
/// same id.
pub fn recover(root: &Path, id: &ContainerId, guess: bool) -> Result<()> {
    let dir = super::state::container_dir(root, id);
    let intent = match Intent::load(&dir) {
        Ok(i) => Some(i),
        Err(e) => {
            if dir.join(INTENT_FILE).exists() {
                crate::runtime_log::warn(&format!("{e:#}"));
            }
            if guess {
                fallback(id)
            } else {
                None
            }
        }
    };
    if let Some(i) = &intent {
        if i.creator_alive() {
            kill_and_wait(i.creator.pid);
        }
        if let Some(init) = i.init.filter(Proc::is_alive) {
            kill_and_wait(init.pid);
        }
        if let Some(cg) = &i.cgroup {
            if i.cgroup_ours {
                kill_cgroup_members(cg);
            }
            if let Err(e) = cg.destroy() {
                crate::runtime_log::error(&format!("Failed to remove cgroup: {e:#}"));
            }
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn kill_and_wait(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    super::kill::wait_gone(pid, Duration::from_secs(5));
}

/// Every process in any of the cgroup's directories (a half-made create may have joined
/// some controllers and not others), killed until none is left.
fn kill_cgroup_members(cg: &Manager) {
    let _ = cg.freeze();
    for _ in 0..10 {
        let mut pids = Vec::new();
        for dir in cg.paths().values() {
            procs_below(dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            break;
        }
        for p in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), Signal::SIGKILL);
        }
        let _ = cg.thaw();
        for p in &pids {
            super::kill::wait_gone(*p, Duration::from_secs(2));
        }
    }
    let _ = cg.thaw();
}

fn procs_below(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                procs_below(&e.path(), out);
            }
        }
    }
}
