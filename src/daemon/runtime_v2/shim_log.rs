//! A shim's log: the shim writes its log to the bundle's `log` fifo (containerd-shim-runc-v2
//! opens it write-only and blocks until a reader is there; ocibox's shim opens it
//! read-write), and the daemon copies each line into its own log at debug level, as
//! containerd copies it to its stderr. Opened read-write so the fifo never reads EOF while
//! the shim restarts its writer; the copy ends when the task is removed ([`ShimLog`]
//! dropped).

use std::path::Path;

use anyhow::{Context, Result};
use tokio::io::AsyncBufReadExt;

use crate::daemon::log;

/// The running copy; dropping it stops the copy.
pub struct ShimLog(tokio::task::AbortHandle);

impl Drop for ShimLog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts copying `<bundle>/log` for task `id` on the daemon's runtime. Must be called with
/// the runtime entered (a service method or a blocking task of it).
pub fn follow(bundle: &Path, id: &str) -> Result<ShimLog> {
    let path = bundle.join("log");
    let rt = tokio::runtime::Handle::try_current()
        .context("no daemon runtime to copy the shim log on")?;
    // Opening a fifo read-write never blocks; registering it needs the runtime entered.
    let _guard = rt.enter();
    let rx = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
        .with_context(|| format!("open shim log {}", path.display()))?;
    let id = id.to_string();
    let task = rt.spawn(async move {
        let mut lines = tokio::io::BufReader::new(rx).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            log::debug(&format!("shim {id}: {l}"));
        }
    });
    Ok(ShimLog(task.abort_handle()))
}
