//! The snapshotter a Transfer's pull commits into: the daemon's snapshotter for the
//! namespace, its records in the metadata database, with every record read and write
//! made under the daemon's change lock and GC hold ([`Snapshotters::change`]) as the
//! Snapshots service makes its changes.
//!
//! The pull library calls the snapshotter from its own threads for a long time, so the
//! locks cannot be held from its start to its end. Each `load` and each `save` takes them
//! instead, and two things keep the records whole in between:
//! - a `load` reserves the next directory number in the database, so the number the
//!   caller then takes (`next_id + 1`) is nobody else's (a read's reservation is a gap in
//!   the numbering, nothing more);
//! - a `save` applies only what the caller changed since its `load` (records added,
//!   changed, removed) to the records as they are now, so what another client or a
//!   collection did meanwhile is kept, never written back over.
//!
//! [`Snapshotters::change`]: crate::daemon::snapshotters::Snapshotters::change

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use anyhow::{anyhow, Result};

use crate::daemon::context::Daemon;
use crate::snapshot::store::State;
use crate::snapshot::{overlay, Driver, RedbStore, SnapshotStore, Snapshotter};

/// Snapshotter `name` as namespace `ns` sees it, for a Transfer's pull.
pub fn locked_snapshotter(d: &Arc<Daemon>, ns: &str, name: &str) -> Result<Snapshotter> {
    let driver = match name {
        "native" => Driver::Native,
        _ => Driver::Overlay {
            index_off: overlay::supports_index(),
        },
    };
    let root = d
        .config
        .root
        .join(format!("io.containerd.snapshotter.v1.{name}"));
    Snapshotter::with_store(
        &root,
        driver,
        Box::new(LockedStore {
            d: d.clone(),
            ns: ns.to_owned(),
            name: name.to_owned(),
            inner: RedbStore::new(d.db.clone(), ns, name),
            loaded: Mutex::new(HashMap::new()),
        }),
    )
}

struct LockedStore {
    d: Arc<Daemon>,
    ns: String,
    name: String,
    inner: RedbStore,
    /// What each thread last loaded: the base its next save is measured against.
    loaded: Mutex<HashMap<ThreadId, State>>,
}

impl LockedStore {
    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, State>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SnapshotStore for LockedStore {
    fn load(&self) -> Result<State> {
        let _hold = self.d.snapshotters.change(&self.ns, &self.name)?;
        let state = self.inner.load()?;
        let reserve = State {
            next_id: state.next_id + 1,
            snapshots: state.snapshots.clone(),
        };
        self.inner.save(&reserve)?;
        self.loaded()
            .insert(std::thread::current().id(), state.clone());
        Ok(state)
    }

    fn save(&self, new: &State) -> Result<()> {
        let base = self
            .loaded()
            .remove(&std::thread::current().id())
            .ok_or_else(|| anyhow!("snapshot records saved without being loaded first"))?;
        let _hold = self.d.snapshotters.change(&self.ns, &self.name)?;
        let mut now = self.inner.load()?;
        for (key, r) in &new.snapshots {
            if base.snapshots.get(key) != Some(r) {
                now.snapshots.insert(key.clone(), r.clone());
            }
        }
        for key in base.snapshots.keys() {
            if !new.snapshots.contains_key(key) {
                now.snapshots.remove(key);
            }
        }
        now.next_id = now.next_id.max(new.next_id);
        self.inner.save(&now)
    }
}
