//! The snapshotters ociboxd serves, by containerd's names: `overlayfs` (the default) and
//! `native`, each rooted at containerd's plugin directory under the root
//! (`io.containerd.snapshotter.v1.<name>`).
//!
//! The namespaced view (containerd's metadata snapshotter) lives in the metadata database
//! (`metadata::snapshots`): a namespace's key maps to a *backing* key in the snapshotter,
//! `<namespace>/<sequence>/<key>`, so two namespaces may use the same key and a removed
//! key can be prepared again while its old backing snapshot is still being removed. This
//! file also removes backing snapshots once their records are gone (after garbage
//! collection, and `Cleanup` for any the records no longer name).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::Database;
use crate::metadata::{namespaces, snapshots};
use crate::snapshot::Snapshotter;

/// The snapshotter `ctr` and the Go client use when none is named.
pub const DEFAULT: &str = "overlayfs";

pub struct Snapshotters {
    pub overlayfs: Arc<Snapshotter>,
    pub native: Arc<Snapshotter>,
    seq: AtomicU64,
}

impl Snapshotters {
    pub fn open(root: &Path) -> Result<Snapshotters> {
        let overlayfs = Snapshotter::overlay(&root.join("io.containerd.snapshotter.v1.overlayfs"))?;
        let native = Snapshotter::native(&root.join("io.containerd.snapshotter.v1.native"))?;
        // Sequence numbers only need to be unique among live backing keys of a namespace;
        // starting from the clock keeps them so across restarts without a stored counter.
        let start = crate::timefmt::to_unix_nanos(std::time::SystemTime::now()).max(0) as u64;
        Ok(Snapshotters {
            overlayfs: Arc::new(overlayfs),
            native: Arc::new(native),
            seq: AtomicU64::new(start),
        })
    }

    /// The snapshotter named `name`, with containerd's errors for none or an unknown one.
    pub fn get(&self, name: &str) -> Result<&Arc<Snapshotter>> {
        match name {
            "" => Err(ErrorKind::InvalidArgument.err("snapshotter argument missing")),
            "overlayfs" => Ok(&self.overlayfs),
            "native" => Ok(&self.native),
            other => Err(err(
                ErrorKind::NotFound,
                format!("snapshotter not loaded: {other}"),
            )),
        }
    }

    /// Every snapshotter with its name.
    pub fn all(&self) -> [(&'static str, &Arc<Snapshotter>); 2] {
        [("overlayfs", &self.overlayfs), ("native", &self.native)]
    }

    /// A fresh backing key for namespace `ns`'s `key`.
    pub fn backing_key(&self, ns: &str, key: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{ns}/{n}/{key}")
    }

    /// Remove the backing snapshots of records garbage collection (or a caller) deleted.
    /// Children go before parents: a record set removed together may hold a whole chain.
    /// Failures are returned after every removable one is gone.
    pub fn remove_backing(&self, removed: &[(String, snapshots::Snapshot)]) -> Result<()> {
        let mut pending: Vec<&snapshots::Snapshot> = removed.iter().map(|(_, s)| s).collect();
        let mut last_err = None;
        while !pending.is_empty() {
            let before = pending.len();
            let mut next = Vec::new();
            for s in pending {
                let Ok(sn) = self.get(&s.snapshotter) else {
                    continue;
                };
                match sn.remove(&s.backing) {
                    Ok(()) => {}
                    Err(e) if crate::errdefs::kind_of(&e) == ErrorKind::NotFound => {}
                    Err(e) if crate::errdefs::kind_of(&e) == ErrorKind::FailedPrecondition => {
                        next.push(s);
                        last_err = Some(e);
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            if next.len() == before {
                break;
            }
            pending = next;
        }
        match last_err {
            Some(e) if !pending_is_empty(removed, self) => Err(e),
            _ => Ok(()),
        }
    }

    /// Remove every backing snapshot of `snapshotter` no namespace's record names (what a
    /// crash between a backing change and its record left behind); containerd's Cleanup.
    pub fn cleanup(&self, db: &Database, snapshotter: &str) -> Result<()> {
        let sn = self.get(snapshotter)?;
        let named: HashSet<String> = db.view(|v| {
            let mut out = HashSet::new();
            for ns in namespaces::list(v)? {
                for s in snapshots::list(v, &ns, snapshotter, &[])? {
                    out.insert(s.backing);
                }
            }
            Ok(out)
        })?;
        let mut orphans = Vec::new();
        sn.walk(|i| {
            if !named.contains(&i.name) {
                orphans.push((i.name.clone(), i.parent.clone()));
            }
            Ok(())
        })?;
        // Children first: remove leaves until nothing more goes.
        loop {
            let parents: HashSet<String> = orphans.iter().map(|(_, p)| p.clone()).collect();
            let (leaves, rest): (Vec<_>, Vec<_>) =
                orphans.into_iter().partition(|(n, _)| !parents.contains(n));
            if leaves.is_empty() {
                break;
            }
            for (n, _) in &leaves {
                let _ = sn.remove(n);
            }
            orphans = rest;
        }
        Ok(())
    }
}

/// Whether every backing snapshot of `removed` is gone.
fn pending_is_empty(removed: &[(String, snapshots::Snapshot)], s: &Snapshotters) -> bool {
    removed.iter().all(|(_, r)| match s.get(&r.snapshotter) {
        Ok(sn) => sn.stat(&r.backing).is_err(),
        Err(_) => true,
    })
}
