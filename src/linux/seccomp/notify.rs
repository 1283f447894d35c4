//! SCMP_ACT_NOTIFY: handing the listener fd to the seccomp agent at `listenerPath`.
//!
//! The runtime-spec's protocol: connect to the agent's unix stream socket and send one
//! message holding the "container process state" JSON, with the listener fd attached by
//! SCM_RIGHTS; `fds` names the attached fds in order (here the one "seccompFd").

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The runtime-spec's `containerProcessState` (config-linux.md, "Seccomp" / listenerPath).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProcessState<'a, S: Serialize> {
    pub oci_version: &'a str,
    pub fds: Vec<&'static str>,
    pub pid: i32,
    /// `listenerMetadata` from the spec; empty when unset.
    pub metadata: &'a str,
    /// The container's state, as `ocibox state` prints it.
    pub state: &'a S,
}

/// The JSON to send with [`send_to_listener`].
pub fn process_state_json<S: Serialize>(
    oci_version: &str,
    pid: i32,
    listener_metadata: Option<&str>,
    state: &S,
) -> Result<Vec<u8>> {
    let st = ContainerProcessState {
        oci_version,
        fds: vec!["seccompFd"],
        pid,
        metadata: listener_metadata.unwrap_or(""),
        state,
    };
    serde_json::to_vec(&st).context("encode seccomp container process state")
}

/// Connects to the agent at `listener_path` and sends `state_json` with `fd` attached.
pub fn send_to_listener(listener_path: &Path, fd: BorrowedFd, state_json: &[u8]) -> Result<()> {
    let what = || format!("send seccomp notify fd to {}", listener_path.display());
    // runc's words, which callers grep for.
    let sock = UnixStream::connect(listener_path).map_err(|e| {
        anyhow::anyhow!(
            "failed to connect with seccomp agent specified in the seccomp profile: dial unix {}: connect: {}",
            listener_path.display(),
            crate::linux::go_errno::errno_text(&e)
        )
    })?;
    let sent =
        crate::linux::fd_passing::send_fd(sock.as_fd(), state_json, fd).with_context(what)?;
    if sent != state_json.len() {
        bail!(
            "{}: short write ({sent} of {} bytes)",
            what(),
            state_json.len()
        );
    }
    Ok(())
}
