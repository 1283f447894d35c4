//! The containerd shim v2 (task v2 API over ttrpc) that containerd 1.6/1.7 drive as
//! `io.containerd.ocibox.v2`, over ocibox's own runtime or any runc-compatible binary.
//!
//! - [`start`]: the `start` subcommand (socket address, launching the daemon)
//! - the ttrpc server (one poll loop, bounded workers, unknown methods UNIMPLEMENTED) and the error-kind
//!   → code mapping are [`crate::ttrpc`]; event topics and envelopes [`crate::events`]
//! - [`serve`]: the serving daemon; [`task_service`] the API (request → engine → response),
//!   [`task_methods`] its methods on the wire;
//!   [`process`] the per-process state machine; [`process_table`] the container and its
//!   processes; [`exit_routing`] exits and their order with Start; [`reaper`] the one
//!   `waitpid`; [`stdio`] + [`console_socket`] the IO, copied by the one [`io_loop`] thread;
//!   [`publisher`] sends the events; [`oom_events`] OOM events and [`metrics`] the Stats reply,
//!   both over [`crate::linux::cgroups`];
//!   [`trim`] gives back the memory an idle shim does not use
//! - [`runtime_client`] calls the runtime, [`launch`] starts processes through it; [`options`] which runtime, from containerd's
//!   options; [`rootfs_mounts`] the rootfs mounts of Create
//! - [`delete`]: the `delete` subcommand
//!
//! Not yet: checkpoint/restore (UNIMPLEMENTED), `binary://` log URIs, shim grouping (one
//! shim per container).

pub mod console_socket;
pub mod delete;
pub mod exit_routing;
pub mod io_loop;
pub mod launch;
pub mod metrics;
pub mod oom_events;
pub mod options;
pub mod process;
pub mod process_table;
pub mod publisher;
pub mod reaper;
pub mod rootfs_mounts;
pub mod runtime_client;
pub mod serve;
pub mod start;
pub mod stdio;
pub mod task_methods;
pub mod task_service;
pub mod trim;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// What the shim was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Delete,
    Serve,
}

/// The shim's command line, as containerd passes it (Go flag style).
#[derive(Debug, Clone, Default)]
pub struct ShimArgs {
    pub namespace: String,
    pub address: String,
    pub publish_binary: String,
    pub id: String,
    /// `-bundle`; else the working directory.
    pub bundle: Option<PathBuf>,
    pub debug: bool,
}

impl ShimArgs {
    pub fn bundle_dir(&self) -> Result<PathBuf> {
        match &self.bundle {
            Some(b) => Ok(b.clone()),
            None => std::env::current_dir().context("bundle: read the working directory"),
        }
    }

    fn check(&self) -> Result<()> {
        if self.namespace.is_empty() {
            bail!("shim namespace cannot be empty");
        }
        if self.id.is_empty() {
            bail!("shim id cannot be empty");
        }
        Ok(())
    }
}

/// Runs the shim: `Start` prints the address, `Delete` the DeleteResponse, `Serve` serves.
pub fn run(args: &ShimArgs, action: Action) -> Result<()> {
    args.check()?;
    use std::io::Write;
    match action {
        Action::Start => {
            let addr = start::start(args)?;
            let mut out = std::io::stdout();
            out.write_all(addr.as_bytes()).context("write address")?;
            out.flush().context("write address")
        }
        Action::Delete => {
            let resp = delete::delete(args)?;
            let mut out = std::io::stdout();
            out.write_all(&resp).context("write DeleteResponse")?;
            out.flush().context("write DeleteResponse")
        }
        Action::Serve => serve::serve(args),
    }
}
