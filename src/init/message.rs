//! What the runtime and the container init say to each other, in order:
//!
//! ```text
//! runtime → init   Bootstrap
//! init → runtime   NeedIdMaps          (new user namespace: the runtime writes the maps)
//! runtime → init   IdMapsWritten
//! init → runtime   Pid                 (the container process, as the host sees it)
//! init → runtime   RunHooks            (mounts done: prestart + createRuntime now)
//! runtime → init   HooksDone
//! init → runtime   Ready               (before dropping privileges)
//! runtime → init   Continue            (cgroup resources applied)
//! init → runtime   SeccompFd + fd      (only with SCMP_ACT_NOTIFY)
//! init closes the channel              (blocked on exec.fifo, or about to exec)
//! ```
//! Either side may send `Error` instead and stop.

use crate::linux::namespaces::Request;
use crate::oci::spec::TimeOffset;
use crate::oci::state::OciState;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Mode {
    /// A new container (`create` / `run`): rootfs set up, blocks on exec.fifo.
    Create,
    /// A new process in a running container (`exec`): joins its namespaces.
    Exec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bootstrap {
    pub mode: Mode,
    /// A fresh session keyring to join (runc names it `_ses.<id>`); None for `exec` and
    /// with `--no-new-keyring`.
    pub session_keyring: Option<String>,
    pub spec: Spec,
    pub time_offsets: Vec<TimeOffset>,
    pub rootfs: PathBuf,
    pub namespaces: Vec<Request>,
    pub no_pivot: bool,
    /// Fds 3..3+preserve_fds are passed to the container process.
    pub preserve_fds: u32,
    /// Added to the process environment (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    /// A connected console socket, when process.terminal is set.
    pub console_fd: Option<RawFd>,
    /// An O_PATH descriptor of `<state>/exec.fifo` (create mode).
    pub fifo_fd: Option<RawFd>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    Bootstrap(Box<Bootstrap>),
    NeedIdMaps,
    IdMapsWritten,
    Pid {
        pid: i32,
    },
    RunHooks,
    /// The OCI state for the container's own hooks: createContainer gets it as it is
    /// (status "created"), startContainer with status "running".
    HooksDone {
        state: OciState,
    },
    Ready,
    Continue,
    /// The seccomp listener descriptor follows (SCMP_ACT_NOTIFY); the runtime passes it
    /// to the agent at listenerPath.
    SeccompFd,
    /// Something runc would log as a warning (the runtime logs it; the container's
    /// stderr is the user's).
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
}
