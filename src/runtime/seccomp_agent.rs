//! Handing a container process's seccomp notify listener to the agent at `listenerPath`
//! (runtime-spec "containerProcessState"), as runc does from the runtime side.

use crate::linux::seccomp;
use crate::oci::state::OciState;
use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, OwnedFd};

pub fn hand_over(spec: &Spec, fd: OwnedFd, state: &OciState) -> Result<()> {
    let sc = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .context("a seccomp listener arrived but the spec has no seccomp section")?;
    let path = sc
        .listener_path()
        .clone()
        .context("seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set")?;
    let json = seccomp::process_state_json(
        spec.version(),
        state.pid,
        sc.listener_metadata().as_deref(),
        state,
    )?;
    seccomp::send_to_listener(&path, fd.as_fd(), &json)
}
