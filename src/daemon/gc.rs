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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tests::TempDir;
    use crate::content::Digest;
    use crate::daemon::config::Config;
    use crate::metadata::encoding::Labels;
    use crate::metadata::namespaced_content::NamespacedContent;
    use crate::metadata::{containers, leases, snapshots};
    use std::io::Write;
    use std::sync::Mutex;

    struct Recorder(Mutex<Vec<String>>);

    impl SnapshotCollector for Recorder {
        fn remove(&self, removed: &[(String, Snapshot)]) -> Result<()> {
            let mut v = self.0.lock().unwrap();
            v.extend(removed.iter().map(|(ns, s)| format!("{ns}/{}", s.key)));
            Ok(())
        }
    }

    fn put(d: &Daemon, lease: Option<&str>, data: &[u8]) -> Digest {
        let nc = NamespacedContent {
            db: &d.db,
            store: &d.content,
            ns: "default".into(),
            lease: lease.map(str::to_string),
        };
        let dg = Digest::of(data);
        let mut w = nc
            .writer(&dg.to_string(), data.len() as u64, Some(dg))
            .unwrap();
        w.write_all(data).unwrap();
        nc.commit(w, data.len() as u64, Some(dg), Labels::new())
            .unwrap()
    }

    fn snapshot(key: &str) -> snapshots::Snapshot {
        snapshots::Snapshot {
            snapshotter: "overlayfs".into(),
            key: key.into(),
            backing: key.into(),
            parent: String::new(),
            kind: snapshots::Kind::Active,
            labels: Labels::new(),
            created_at: 0,
            updated_at: 0,
            dir_id: None,
            usage: None,
        }
    }

    #[test]
    fn scheduled_after_deletes_and_never_takes_what_containers_or_leases_hold() {
        let t = TempDir::new("daemon-gc");
        let d = Daemon::open(Config {
            root: t.0.join("root"),
            state: t.0.join("state"),
            ..Config::default()
        })
        .unwrap();
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        d.gc.set_snapshot_collector(rec.clone()).unwrap();
        assert!(d.gc.set_snapshot_collector(rec.clone()).is_err());

        d.db.update(|tx| leases::create(tx, "default", "pull", Labels::new()).map(|_| ()))
            .unwrap();
        let leased = put(&d, Some("pull"), b"leased blob");
        let by_container = put(&d, None, b"a container's checkpoint");
        let loose = put(&d, None, b"nobody's");
        d.db.update(|tx| {
            snapshots::create(tx, "default", snapshot("c1-rootfs"))?;
            snapshots::create(tx, "default", snapshot("stray"))?;
            containers::create(
                tx,
                "default",
                containers::Container {
                    id: "c1".into(),
                    labels: [(
                        "containerd.io/gc.ref.content.cp".to_string(),
                        by_container.to_string(),
                    )]
                    .into(),
                    runtime: containers::Runtime {
                        name: "io.containerd.runc.v2".into(),
                        options: None,
                    },
                    spec: Some(containers::Any::default()),
                    snapshotter: "overlayfs".into(),
                    snapshot_key: "c1-rootfs".into(),
                    ..Default::default()
                },
            )
            .map(|_| ())
        })
        .unwrap();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(run(d.clone()));
            // A burst of deletes: one collection after the debounce.
            for _ in 0..5 {
                d.gc.schedule();
            }
            tokio::time::sleep(DEBOUNCE * 4).await;
            assert_eq!(d.gc.runs.load(Ordering::SeqCst), 1);
            let held = |dg: &Digest| {
                d.db.view(|v| crate::metadata::content::info(v, "default", dg))
                    .is_ok()
            };
            assert!(
                held(&leased) && held(&by_container),
                "held by a lease and a container"
            );
            assert!(!held(&loose), "unreferenced content record swept");
            assert_eq!(*rec.0.lock().unwrap(), ["default/stray"]);

            // The lease and the container go: what they held goes with the next collection.
            d.db.update(|tx| {
                leases::delete(tx, "default", "pull")?;
                containers::delete(tx, "default", "c1")
            })
            .unwrap();
            let r = d.gc.collect_now(&d).await.unwrap();
            let mut gone: Vec<Digest> = r.content.iter().map(|(_, dg)| *dg).collect();
            gone.sort();
            let mut want = vec![leased, by_container];
            want.sort();
            assert_eq!(gone, want);
            assert_eq!(
                *rec.0.lock().unwrap(),
                ["default/stray", "default/c1-rootfs"]
            );
        });
        // Blobs younger than the grace stay on disk; a later collection removes them.
        assert!(d.content.info(&leased).is_ok());
        std::thread::sleep(BLOB_GRACE + Duration::from_millis(200));
        let r = rt.block_on(d.gc.collect_now(&d)).unwrap();
        for dg in [leased, by_container, loose] {
            assert!(r.blobs.contains(&dg), "{dg} deleted from disk");
            assert!(d.content.info(&dg).is_err());
        }
    }
}
