//! When garbage is collected: services call [`Gc::schedule`] after every delete (images,
//! leases, content, containers, snapshots); the scheduler waits a short debounce so a burst
//! of deletes (`ctr image rm a b c`, a namespace's cleanup) costs one collection, then runs
//! [`crate::metadata::gc::collect`] off the runtime thread. A lease deleted with `sync`
//! waits for a collection of its own ([`Gc::collect_now`]), as containerd's
//! `ScheduleAndWait`.
//!
//! What a collection keeps is decided by the metadata's mark phase (images, containers'
//! snapshots, live leases, gc.root labels and the gc.ref labels they reach); the records it
//! sweeps are gone in the same transaction. Content blobs no namespace holds are deleted
//! from disk here; snapshot records are handed to the [`SnapshotCollector`] the snapshot
//! service installs, which removes their directories.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::daemon::context::Daemon;
use crate::daemon::log;
use crate::metadata::gc::Report;
use crate::metadata::snapshots::Snapshot;

/// How long after the first delete of a burst the collection starts (containerd's
/// scheduler starts its first collection 100 ms after a triggering delete, too).
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Blobs on disk that no namespace holds are spared for this long after their commit: a
/// writer outside the metadata's gc hold may commit a blob and record it a moment later.
/// Records themselves are swept at once; only the file lingers until a later collection.
pub const BLOB_GRACE: Duration = Duration::from_secs(2);

/// Removes what snapshot records swept by a collection stood for (the snapshotter's
/// directories). The snapshot service installs one with [`Gc::set_snapshot_collector`];
/// until then swept snapshots only lose their records.
pub trait SnapshotCollector: Send + Sync {
    /// `removed` is (namespace, record) of every snapshot the collection swept.
    fn remove(&self, removed: &[(String, Snapshot)]) -> Result<()>;
}

pub struct Gc {
    wake: tokio::sync::Notify,
    pending: AtomicBool,
    /// One collection at a time (the scheduled and the synchronous ones).
    running: tokio::sync::Mutex<()>,
    snapshots: OnceLock<Arc<dyn SnapshotCollector>>,
    /// Collections finished since start, for tests and the log.
    pub runs: AtomicU64,
}

impl Default for Gc {
    fn default() -> Self {
        Gc::new()
    }
}

impl Gc {
    pub fn new() -> Gc {
        Gc {
            wake: tokio::sync::Notify::new(),
            pending: AtomicBool::new(false),
            running: tokio::sync::Mutex::new(()),
            snapshots: OnceLock::new(),
            runs: AtomicU64::new(0),
        }
    }

    /// Ask for a collection soon (after something was deleted). Cheap, never blocks.
    pub fn schedule(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Install the snapshot side of collection (once; a second call is refused).
    pub fn set_snapshot_collector(&self, c: Arc<dyn SnapshotCollector>) -> Result<()> {
        self.snapshots
            .set(c)
            .map_err(|_| anyhow::anyhow!("a snapshot collector is already installed"))
    }

    /// Collect now and wait for it (a `sync` lease delete).
    pub async fn collect_now(&self, d: &Arc<Daemon>) -> Result<Report> {
        let _one = self.running.lock().await;
        self.pending.store(false, Ordering::SeqCst);
        let d2 = d.clone();
        let r = tokio::task::spawn_blocking(move || collect_blocking(&d2))
            .await
            .map_err(|e| anyhow::anyhow!("garbage collection task failed: {e}"))??;
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(r)
    }
}

fn collect_blocking(d: &Daemon) -> Result<Report> {
    let now = SystemTime::now();
    let start = std::time::Instant::now();
    let report = crate::metadata::gc::collect(&d.db, &d.content, now, now - BLOB_GRACE)?;
    if !report.snapshots.is_empty() {
        if let Some(c) = d.gc.snapshots.get() {
            // The records are gone already; a directory left behind is logged, and the
            // snapshotter's own cleanup finds it later.
            if let Err(e) = c.remove(&report.snapshots) {
                log::warn(&format!("garbage collection: removing snapshots: {e:#}"));
            }
        }
    }
    log::debug(&format!(
        "garbage collected d={:?} leases={} content={} blobs={} snapshots={}",
        start.elapsed(),
        report.leases.len(),
        report.content.len(),
        report.blobs.len(),
        report.snapshots.len()
    ));
    Ok(report)
}

/// The scheduler: runs on the daemon's runtime until the daemon stops.
pub async fn run(d: Arc<Daemon>) {
    loop {
        if !d.gc.pending.load(Ordering::SeqCst) {
            d.gc.wake.notified().await;
        }
        tokio::time::sleep(DEBOUNCE).await;
        if !d.gc.pending.swap(false, Ordering::SeqCst) {
            continue;
        }
        if let Err(e) = d.gc.collect_now(&d).await {
            log::error(&format!("garbage collection failed: {e:#}"));
        }
    }
}
