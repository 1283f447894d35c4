//! `delete`: remove a stopped container (or, with force, stop it first): cgroups, state
//! directory, then poststop hooks.

use super::id::ContainerId;
use super::intent::{self, Intent};
use super::state::{container_dir, State};
use super::status::Status;
use crate::oci::hooks::{self, Point};
use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::Duration;

pub fn delete(root: &Path, id: &ContainerId, force: bool) -> Result<()> {
    let dir = container_dir(root, id);
    let st = match State::load(root, id) {
        Ok(st) => st,
        Err(_) if !dir.exists() => {
            if force {
                return Ok(());
            }
            bail!("container does not exist");
        }
        Err(_) if !dir.join(super::state::STATE_FILE).exists() => {
            // A create that never got as far as state.json: still running, or cut off
            // (killed, or failed without its undo). As runc, a directory without state is
            // removed also without --force, but only once no create works on it.
            if let Ok(i) = Intent::load(&dir) {
                if i.creator_alive() && !force {
                    bail!("cannot delete container {id} that is not stopped: creating");
                }
            }
            return intent::recover(root, id, false);
        }
        Err(e) => {
            // state.json is there but cannot be read: only --force removes such a container,
            // from the intent record (or, without one, where its cgroups would be).
            if !force {
                return Err(e);
            }
            crate::runtime_log::warn(&format!("{e:#}"));
            return intent::recover(root, id, true);
        }
    };
    delete_loaded(root, &st, force)
}

/// [`delete`] of a container whose state the caller has loaded already.
pub fn delete_loaded(root: &Path, st: &State, force: bool) -> Result<()> {
    let id = &st.id;
    match st.status(root) {
        Status::Stopped => destroy(root, st),
        Status::Created => {
            super::kill::signal_all(st, Signal::SIGKILL, Status::Created)?;
            super::kill::wait_gone(st.pid, Duration::from_secs(10));
            destroy(root, st)
        }
        status @ (Status::Running | Status::Paused | Status::Creating) => {
            if !force {
                bail!("cannot delete container {id} that is not stopped: {status}");
            }
            if status == Status::Paused {
                if let Some(cg) = &st.cgroup {
                    let _ = cg.thaw();
                }
            }
            super::kill::signal_all(st, Signal::SIGKILL, status)?;
            if !super::kill::wait_gone(st.pid, Duration::from_secs(10)) {
                bail!("container init {} still alive after SIGKILL", st.pid);
            }
            destroy(root, st)
        }
    }
}

/// Remove what the container left: remaining processes, cgroups, the state directory;
/// then run the poststop hooks. A failing poststop hook is logged as an error and the
/// delete still succeeds, as runc 1.1's `destroy` does (`runc delete` and `runc run`
/// exit 0).
pub fn destroy(root: &Path, st: &State) -> Result<()> {
    let mut first_err = None;
    if let Some(cg) = &st.cgroup {
        // As runc: with its own new pid namespace the kernel killed the container's processes
        // with its init; whatever else is in the cgroup (a pre-existing cgroup's processes)
        // is not ours to kill. Without one, every process in the cgroup goes.
        if !has_new_pid_namespace(&st.config) {
            if let Ok(pids) = cg.pids() {
                for p in pids {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
                }
            }
        }
        // As runc: a cgroup that cannot be removed (a pre-existing one with other
        // processes in it) is logged, and the container is deleted all the same.
        if let Err(e) = cg.destroy() {
            crate::runtime_log::error(&format!("Failed to remove cgroup: {e:#}"));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(st.dir(root)) {
        if e.kind() != std::io::ErrorKind::NotFound {
            first_err.get_or_insert(e.into());
        }
    }
    let state = serde_json::to_vec(&st.oci_state(Status::Stopped))?;
    if let Err(e) = hooks::run(st.config.hooks().as_ref(), Point::Poststop, &state) {
        crate::runtime_log::error(&format!("{e:#}"));
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn has_new_pid_namespace(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        })
}
