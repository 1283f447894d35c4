//! One garbage collection pass over the daemon's stores, as containerd runs it after a
//! synchronous image delete (`Images.Delete` with `sync`): collect the metadata and blobs
//! (`metadata::gc::collect`), then remove the backing snapshots of the snapshot records it
//! swept. Blocking: call it from `spawn_blocking`. The scheduler that runs it after deletes
//! (daemon-core's) calls this same function.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::daemon::context::Daemon;
use crate::metadata::gc;

/// Blobs committed this recently are kept even when nothing records them yet: a commit in
/// flight records its blob right after the rename.
const COMMIT_GRACE: Duration = Duration::from_secs(10);

/// Collect now; what was removed.
pub fn collect_now(d: &Daemon) -> Result<gc::Report> {
    let now = SystemTime::now();
    let report = gc::collect(&d.db, &d.content, now, now - COMMIT_GRACE)?;
    d.snapshotters.remove_backing(&report.snapshots)?;
    Ok(report)
}
