//! The snapshotters ociboxd serves, by containerd's names: `overlayfs` (the default) and
//! `native`, each rooted at containerd's plugin directory under the root
//! (`io.containerd.snapshotter.v1.<name>`), their records in the metadata database
//! ([`crate::snapshot::RedbStore`], namespaced as containerd's metadata snapshotter: the key
//! a client sees is its namespace's, the directory `snapshots/<n>` is the snapshotter's).
//!
//! One [`Snapshotter`] per (snapshotter, namespace), made on first use and kept, and one
//! change lock per snapshotter: every namespace's snapshots share the snapshotter's
//! directory numbers, so changes to one snapshotter are serialised (RedbStore's rule). A
//! change also holds the metadata's shared GC hold, so a collection never sweeps a record
//! between a snapshotter's load and save.
//!
//! Garbage collection sweeps records; [`Snapshotters`] is its `SnapshotCollector` and
//! removes the directories they stood for. [`Snapshotters::cleanup`] removes directories no
//! record names (a crash between making a directory and saving its record).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::Database;
use crate::metadata::{namespaces, snapshots};
use crate::snapshot::{overlay, Driver, RedbStore, Snapshotter};

/// The snapshotter `ctr` and the Go client use when none is named.
pub const DEFAULT: &str = "overlayfs";

/// The snapshotters served.
pub const NAMES: [&str; 2] = ["overlayfs", "native"];

pub struct Snapshotters {
    root: PathBuf,
    db: Arc<Database>,
    by_ns: Mutex<HashMap<(String, String), Arc<Snapshotter>>>,
    overlayfs_lock: Mutex<()>,
    native_lock: Mutex<()>,
}

/// A snapshotter as one namespace sees it, with the right to change it.
pub struct Changing<'a> {
    pub sn: Arc<Snapshotter>,
    _lock: MutexGuard<'a, ()>,
    _gc: std::sync::RwLockReadGuard<'a, ()>,
}

impl Snapshotters {
    pub fn open(root: &Path, db: Arc<Database>) -> Result<Snapshotters> {
        for n in NAMES {
            let dir = plugin_root(root, n).join("snapshots");
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        }
        Ok(Snapshotters {
            root: root.to_path_buf(),
            db,
            by_ns: Mutex::new(HashMap::new()),
            overlayfs_lock: Mutex::new(()),
            native_lock: Mutex::new(()),
        })
    }

    fn check(name: &str) -> Result<()> {
        match name {
            "" => Err(ErrorKind::InvalidArgument.err("snapshotter argument missing")),
            "overlayfs" | "native" => Ok(()),
            other => Err(err(
                ErrorKind::NotFound,
                format!("snapshotter not loaded: {other}"),
            )),
        }
    }

    fn change_lock(&self, name: &str) -> MutexGuard<'_, ()> {
        let m = if name == "native" {
            &self.native_lock
        } else {
            &self.overlayfs_lock
        };
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Snapshotter `name` as namespace `ns` sees it (for reads), with containerd's errors
    /// for no name or an unknown one.
    pub fn get(&self, ns: &str, name: &str) -> Result<Arc<Snapshotter>> {
        Self::check(name)?;
        let mut m = self.by_ns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m.get(&(name.to_owned(), ns.to_owned())) {
            return Ok(s.clone());
        }
        let driver = match name {
            "native" => Driver::Native,
            _ => Driver::Overlay {
                index_off: overlay::supports_index(),
            },
        };
        let s = Arc::new(Snapshotter::with_store(
            &plugin_root(&self.root, name),
            driver,
            Box::new(RedbStore::new(self.db.clone(), ns, name)),
        )?);
        m.insert((name.to_owned(), ns.to_owned()), s.clone());
        Ok(s)
    }

    /// As [`get`](Self::get), holding the snapshotter's change lock and the GC hold.
    pub fn change(&self, ns: &str, name: &str) -> Result<Changing<'_>> {
        let sn = self.get(ns, name)?;
        let lock = self.change_lock(name);
        let gc = self.db.gc_shared();
        Ok(Changing {
            sn,
            _lock: lock,
            _gc: gc,
        })
    }

    /// Remove the directories of records a collection swept.
    pub fn remove_swept(&self, removed: &[(String, snapshots::Snapshot)]) -> Result<()> {
        let mut last = None;
        for (_, s) in removed {
            let Some(id) = s.dir_id else { continue };
            if Self::check(&s.snapshotter).is_err() {
                continue;
            }
            let _g = self.change_lock(&s.snapshotter);
            if let Err(e) = remove_dir_aside(&plugin_root(&self.root, &s.snapshotter), id) {
                last = Some(e);
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Remove every directory of snapshotter `name` no namespace's record names, and what
    /// an interrupted make or remove left (`new-*`, `rm-*`); containerd's Cleanup.
    pub fn cleanup(&self, name: &str) -> Result<()> {
        Self::check(name)?;
        let _g = self.change_lock(name);
        let _gc = self.db.gc_shared();
        let named: HashSet<u64> = self.db.view(|v| {
            let mut out = HashSet::new();
            for ns in namespaces::list(v)? {
                for s in snapshots::list(v, &ns, name, &[])? {
                    out.extend(s.dir_id);
                }
            }
            Ok(out)
        })?;
        let dir = plugin_root(&self.root, name).join("snapshots");
        for ent in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let ent = ent?;
            let fname = ent.file_name().to_string_lossy().into_owned();
            let orphan = match fname.parse::<u64>() {
                Ok(id) => !named.contains(&id),
                Err(_) => fname.starts_with("new-") || fname.starts_with("rm-"),
            };
            if orphan {
                let p = ent.path();
                std::fs::remove_dir_all(&p).with_context(|| format!("remove {}", p.display()))?;
            }
        }
        Ok(())
    }
}

impl crate::daemon::gc::SnapshotCollector for Snapshotters {
    fn remove(&self, removed: &[(String, snapshots::Snapshot)]) -> Result<()> {
        self.remove_swept(removed)
    }
}

fn plugin_root(root: &Path, name: &str) -> PathBuf {
    root.join(format!("io.containerd.snapshotter.v1.{name}"))
}

/// Remove `snapshots/<id>`: renamed aside first, so a crash never leaves half a directory
/// under a live number.
fn remove_dir_aside(plugin_root: &Path, id: u64) -> Result<()> {
    let dir = plugin_root.join("snapshots").join(id.to_string());
    let aside = plugin_root.join("snapshots").join(format!("rm-{id}"));
    match std::fs::rename(&dir, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("remove {}", dir.display())),
    }
    std::fs::remove_dir_all(&aside).with_context(|| format!("remove {}", aside.display()))
}
