//! `pause` / `resume`: freeze and thaw every process of the container (freezer v1/v2).

use super::id::ContainerId;
use super::state::State;
use super::status::Status;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn pause(root: &Path, id: &ContainerId) -> Result<()> {
    let st = State::load(root, id)?;
    match st.status(root) {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container already paused"),
        _ => bail!("container not running"),
    }
    st.cgroup
        .as_ref()
        .context("container has no cgroup to freeze")?
        .freeze()
        .context("freeze container")
}

pub fn resume(root: &Path, id: &ContainerId) -> Result<()> {
    let st = State::load(root, id)?;
    if st.status(root) != Status::Paused {
        bail!("container not paused");
    }
    st.cgroup
        .as_ref()
        .context("container has no cgroup to thaw")?
        .thaw()
        .context("thaw container")
}
