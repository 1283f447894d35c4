//! Snapshot records in the metadata database, so the daemon has one crash-safe database:
//! each record is the namespaced snapshot record of [`crate::metadata::snapshots`]
//! (containerd's `v1/<ns>/snapshots/<snapshotter>/<key>`, here the `v1/snapshots` table
//! keyed by `(<ns>, "<snapshotter>/<key>")`), with the snapshotter's own directory number and
//! the usage fixed at commit in it. Garbage collection, leases and the API therefore see the
//! very records the snapshotter works from; there is no second store to drift from.
//!
//! The directory counter is per snapshotter, not per namespace (`v1/snapshotter-ids`), since
//! every namespace's snapshots live under the one `snapshots/` directory.
//!
//! [`SnapshotStore`] loads and saves the whole state; a save writes only the records that
//! changed and removes the ones that went, in one write transaction. Decision: one
//! [`super::Snapshotter`] per (root, namespace) in a process; two instances over the same
//! namespace would each hold their own lock and could lose each other's updates. The
//! counter never goes back (a save keeps the larger of the stored and the given value), so
//! two namespaces' snapshotters never hand out one directory number twice in sequence; the
//! daemon serialises snapshot changes per snapshotter root.

use std::sync::Arc;

use anyhow::{Context, Result};
use redb::ReadableTable;

use super::snapshotter::Kind;
use super::store::{Record, SnapshotStore, State};
use crate::metadata::db::{db_err, decode, encode, Database, Read, SNAPSHOTS, SNAPSHOTTER_IDS};
use crate::metadata::namespaces;
use crate::metadata::snapshots::{self, table_key, Snapshot};

pub struct RedbStore {
    db: Arc<Database>,
    ns: String,
    snapshotter: String,
}

impl RedbStore {
    /// The records of `snapshotter` (`overlayfs`, `native`) in namespace `ns`.
    pub fn new(db: Arc<Database>, ns: &str, snapshotter: &str) -> RedbStore {
        RedbStore {
            db,
            ns: ns.to_owned(),
            snapshotter: snapshotter.to_owned(),
        }
    }

    fn prefix(&self) -> String {
        format!("{}/", self.snapshotter)
    }

    fn to_snapshot(&self, key: &str, r: &Record) -> Snapshot {
        Snapshot {
            snapshotter: self.snapshotter.clone(),
            key: key.to_owned(),
            // containerd's metadata names the backing snapshot `<ns>/<n>/<key>`.
            backing: format!("{}/{}/{key}", self.ns, r.id),
            parent: r.parent.clone().unwrap_or_default(),
            kind: match r.kind {
                Kind::View => snapshots::Kind::View,
                Kind::Active => snapshots::Kind::Active,
                Kind::Committed => snapshots::Kind::Committed,
            },
            labels: r.labels.clone(),
            created_at: i64::try_from(r.created).unwrap_or(i64::MAX),
            updated_at: i64::try_from(r.updated).unwrap_or(i64::MAX),
            dir_id: Some(r.id),
            usage: r.usage,
        }
    }
}

fn to_record(s: Snapshot) -> Result<Record> {
    let id = s.dir_id.with_context(|| {
        format!(
            "snapshot {:?} has no directory number: it was not recorded by a snapshotter",
            s.key
        )
    })?;
    Ok(Record {
        id,
        kind: match s.kind {
            snapshots::Kind::View => Kind::View,
            snapshots::Kind::Active => Kind::Active,
            snapshots::Kind::Committed => Kind::Committed,
        },
        parent: (!s.parent.is_empty()).then_some(s.parent),
        labels: s.labels,
        created: u64::try_from(s.created_at).unwrap_or(0),
        updated: u64::try_from(s.updated_at).unwrap_or(0),
        usage: s.usage,
    })
}

impl SnapshotStore for RedbStore {
    fn load(&self) -> Result<State> {
        let prefix = self.prefix();
        self.db.view(|v| {
            let ids = v.txn.open_table(SNAPSHOTTER_IDS).map_err(db_err)?;
            let next_id = ids
                .get(self.snapshotter.as_str())
                .map_err(db_err)?
                .map(|g| g.value())
                .unwrap_or(0);
            let mut state = State {
                next_id,
                ..State::default()
            };
            for (k, raw) in v.scan_raw(SNAPSHOTS, &self.ns)? {
                let Some(key) = k.strip_prefix(&prefix) else {
                    continue;
                };
                let s: Snapshot = decode("snapshot", &raw)?;
                state.snapshots.insert(key.to_owned(), to_record(s)?);
            }
            Ok(state)
        })
    }

    fn save(&self, state: &State) -> Result<()> {
        let prefix = self.prefix();
        self.db.update(|tx| {
            namespaces::ensure(tx, &self.ns)?;
            let existing = tx.scan_raw(SNAPSHOTS, &self.ns)?;
            for (k, _) in &existing {
                if let Some(key) = k.strip_prefix(&prefix) {
                    if !state.snapshots.contains_key(key) {
                        tx.remove_raw(SNAPSHOTS, &self.ns, k)?;
                    }
                }
            }
            let old: std::collections::HashMap<&str, &[u8]> = existing
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            for (key, r) in &state.snapshots {
                let k = table_key(&self.snapshotter, key);
                let raw = encode(&self.to_snapshot(key, r))?;
                if old.get(k.as_str()) != Some(&raw.as_slice()) {
                    tx.put_raw(SNAPSHOTS, &self.ns, &k, &raw)?;
                }
            }
            let mut ids = tx.txn.open_table(SNAPSHOTTER_IDS).map_err(db_err)?;
            let stored = ids
                .get(self.snapshotter.as_str())
                .map_err(db_err)?
                .map(|g| g.value())
                .unwrap_or(0);
            if state.next_id > stored {
                ids.insert(self.snapshotter.as_str(), state.next_id)
                    .map_err(db_err)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tests::TempDir;
    use crate::content::Store;
    use crate::snapshot::{Driver, Snapshotter};
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    fn snapshotter(root: &std::path::Path, db: &Arc<Database>, ns: &str) -> Snapshotter {
        Snapshotter::with_store(
            root,
            Driver::Native,
            Box::new(RedbStore::new(db.clone(), ns, "native")),
        )
        .unwrap()
    }

    #[test]
    fn records_are_the_namespaced_metadata_and_survive_a_reopen_and_gc_sees_them() {
        let t = TempDir::new("redb-snap");
        let db = Arc::new(Database::open(&t.0.join("meta.db")).unwrap());
        let root = t.0.join("io.containerd.snapshotter.v1.native");
        let sn = snapshotter(&root, &db, "default");
        sn.prepare("work", "", BTreeMap::new()).unwrap();
        std::fs::write(sn.path_of("work").unwrap().join("f"), "x").unwrap();
        let labels = BTreeMap::from([("l".to_string(), "v".to_string())]);
        sn.commit("sha256:base", "work", labels.clone()).unwrap();
        sn.prepare("kept", "sha256:base", BTreeMap::new()).unwrap();

        // The API's view of the same records: namespaced, with parent, kind and labels.
        let rec = db
            .view(|v| snapshots::get(v, "default", "native", "sha256:base"))
            .unwrap();
        assert_eq!(rec.kind, snapshots::Kind::Committed);
        assert_eq!(rec.labels, labels);
        assert_eq!(rec.dir_id, Some(1));
        assert!(rec.usage.is_some());
        let kept = db
            .view(|v| snapshots::get(v, "default", "native", "kept"))
            .unwrap();
        assert_eq!(kept.parent, "sha256:base");
        assert!(db
            .view(|v| snapshots::get(v, "default", "native", "work"))
            .is_err());

        // Another namespace has its own records but never reuses a directory number.
        let other = snapshotter(&root, &db, "other");
        other.prepare("x", "", BTreeMap::new()).unwrap();
        assert_eq!(other.path_of("x").unwrap(), root.join("snapshots/3"));
        assert!(other.stat("sha256:base").is_err());

        // A new snapshotter over the same database sees everything.
        drop(sn);
        let sn = snapshotter(&root, &db, "default");
        assert_eq!(sn.stat("sha256:base").unwrap().labels, labels);
        assert_eq!(
            std::fs::read_to_string(sn.path_of("sha256:base").unwrap().join("f")).unwrap(),
            "x"
        );

        // Garbage collection works on these very records: nothing roots them.
        let store = Store::open(t.0.join("content")).unwrap();
        let report =
            crate::metadata::gc::collect(&db, &store, SystemTime::now(), SystemTime::now())
                .unwrap();
        let swept: Vec<&str> = report
            .snapshots
            .iter()
            .map(|(_, s)| s.key.as_str())
            .collect();
        assert!(
            swept.contains(&"sha256:base") && swept.contains(&"kept"),
            "{swept:?}"
        );
        assert!(sn.stat("sha256:base").is_err());
    }
}
