//! The metadata database: one redb file, one write transaction at a time (ACID, durable on
//! commit), many readers. Tables echo containerd's bolt buckets (`v1/<ns>/images/…`) as
//! `v1/images` keyed by `(namespace, name)`; records are JSON.

use crate::errdefs::{err, ErrorKind};
use anyhow::Context;
use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A table keyed by (namespace, name).
pub type NsTable = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

/// Namespaces: name → labels.
pub const NAMESPACES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("v1/namespaces");
/// Images by name.
pub const IMAGES: NsTable = TableDefinition::new("v1/images");
/// Content blobs a namespace holds (size, labels), by digest.
pub const CONTENT: NsTable = TableDefinition::new("v1/content/blob");
/// Leases by ID.
pub const LEASES: NsTable = TableDefinition::new("v1/leases");
/// Snapshots by `<snapshotter>/<key>`.
pub const SNAPSHOTS: NsTable = TableDefinition::new("v1/snapshots");
/// The next directory number of each snapshotter that keeps its records in this database
/// (`overlayfs` → n): not namespaced, as the snapshotter's directories are shared.
pub const SNAPSHOTTER_IDS: TableDefinition<'static, &'static str, u64> =
    TableDefinition::new("v1/snapshotter-ids");
/// Containers by ID.
pub const CONTAINERS: NsTable = TableDefinition::new("v1/containers");

/// Every namespaced table, with the word containerd uses for it when a namespace is not empty.
pub const NS_TABLES: [(NsTable, &str); 5] = [
    (IMAGES, "images"),
    (CONTENT, "blobs"),
    (SNAPSHOTS, "snapshots"),
    (CONTAINERS, "containers"),
    (LEASES, "leases"),
];

pub(crate) fn db_err(e: impl Into<redb::Error>) -> anyhow::Error {
    anyhow::Error::new(e.into()).context("metadata database")
}

/// What redb may keep cached of the file (read pages and the write buffer).
const CACHE_BYTES: usize = 8 << 20;

/// The open database.
pub struct Database {
    db: redb::Database,
    /// Held shared by content writers between a blob's commit and its record, exclusively
    /// by garbage collection, so a collection never deletes a blob about to be recorded.
    gc_lock: std::sync::RwLock<()>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("metadata::Database")
    }
}

impl Database {
    /// Open or create the database file at `path` (the daemon uses
    /// `<root>/io.containerd.metadata.v1.redb/meta.db`). A second process opening it gets
    /// Unavailable.
    pub fn open(path: &Path) -> anyhow::Result<Database> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        // redb caches up to 1 GiB of pages by default, kept for the daemon's life; the
        // metadata of even a big host is a few MiB.
        let db = match redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(err(
                    ErrorKind::Unavailable,
                    format!(
                        "metadata database {} is in use by another process",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(db_err(e)).with_context(|| format!("open {}", path.display())),
        };
        let this = Database {
            db,
            gc_lock: std::sync::RwLock::new(()),
        };
        // Create every table once so readers never meet a missing one.
        this.update(|tx| {
            tx.txn.open_table(NAMESPACES).map_err(db_err)?;
            tx.txn.open_table(SNAPSHOTTER_IDS).map_err(db_err)?;
            for (t, _) in NS_TABLES {
                tx.txn.open_table(t).map_err(db_err)?;
            }
            Ok(())
        })?;
        Ok(this)
    }

    /// Run `f` in one write transaction: committed (durably) when it returns Ok, rolled back
    /// entirely when it returns Err.
    pub fn update<R>(&self, f: impl FnOnce(&Tx) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let tx = Tx { txn };
        match f(&tx) {
            Ok(r) => {
                tx.txn.commit().map_err(db_err)?;
                Ok(r)
            }
            Err(e) => {
                let _ = tx.txn.abort();
                Err(e)
            }
        }
    }

    /// Shared hold against garbage collection (see `gc`), for writers of content.
    pub fn gc_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gc_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Exclusive hold for a garbage collection.
    pub fn gc_exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on a consistent snapshot of the database.
    pub fn view<R>(&self, f: impl FnOnce(&View) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let txn = self.db.begin_read().map_err(db_err)?;
        f(&View { txn })
    }
}

/// A write transaction.
pub struct Tx {
    pub(crate) txn: redb::WriteTransaction,
}

/// A read transaction.
pub struct View {
    pub(crate) txn: redb::ReadTransaction,
}

/// Reads, in a read or a write transaction (a write transaction sees its own writes).
pub trait Read {
    /// The raw record at (ns, key).
    fn get_raw(&self, t: NsTable, ns: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Every (key, record) of `ns` in `t`, in key order.
    fn scan_raw(&self, t: NsTable, ns: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>>;
    /// The namespace record (its labels), if the namespace exists.
    fn namespace_raw(&self, ns: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Every namespace name and record.
    fn namespaces_raw(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>>;
}

fn get_in(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
    key: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(t.get((ns, key))
        .map_err(db_err)?
        .map(|v| v.value().to_vec()))
}

fn scan_in(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in t.range((ns, "")..).map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        let (kns, key) = k.value();
        if kns != ns {
            break;
        }
        out.push((key.to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

fn all_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in t.iter().map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

impl Read for View {
    fn get_raw(&self, t: NsTable, ns: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        get_in(&self.txn.open_table(t).map_err(db_err)?, ns, key)
    }
    fn scan_raw(&self, t: NsTable, ns: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        scan_in(&self.txn.open_table(t).map_err(db_err)?, ns)
    }
    fn namespace_raw(&self, ns: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let t = self.txn.open_table(NAMESPACES).map_err(db_err)?;
        Ok(t.get(ns).map_err(db_err)?.map(|v| v.value().to_vec()))
    }
    fn namespaces_raw(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        all_in(&self.txn.open_table(NAMESPACES).map_err(db_err)?)
    }
}

impl Read for Tx {
    fn get_raw(&self, t: NsTable, ns: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        get_in(&self.txn.open_table(t).map_err(db_err)?, ns, key)
    }
    fn scan_raw(&self, t: NsTable, ns: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        scan_in(&self.txn.open_table(t).map_err(db_err)?, ns)
    }
    fn namespace_raw(&self, ns: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let t = self.txn.open_table(NAMESPACES).map_err(db_err)?;
        let v = t.get(ns).map_err(db_err)?.map(|v| v.value().to_vec());
        Ok(v)
    }
    fn namespaces_raw(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        all_in(&self.txn.open_table(NAMESPACES).map_err(db_err)?)
    }
}

impl Tx {
    /// Store a raw record.
    pub fn put_raw(&self, t: NsTable, ns: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let mut table = self.txn.open_table(t).map_err(db_err)?;
        table.insert((ns, key), value).map_err(db_err)?;
        Ok(())
    }
    /// Remove a record; whether it was there.
    pub fn remove_raw(&self, t: NsTable, ns: &str, key: &str) -> anyhow::Result<bool> {
        let mut table = self.txn.open_table(t).map_err(db_err)?;
        let r = table.remove((ns, key)).map_err(db_err)?.is_some();
        Ok(r)
    }
    /// Store a namespace record.
    pub fn put_namespace_raw(&self, ns: &str, value: &[u8]) -> anyhow::Result<()> {
        let mut t = self.txn.open_table(NAMESPACES).map_err(db_err)?;
        t.insert(ns, value).map_err(db_err)?;
        Ok(())
    }
    /// Remove a namespace record; whether it was there.
    pub fn remove_namespace_raw(&self, ns: &str) -> anyhow::Result<bool> {
        let mut t = self.txn.open_table(NAMESPACES).map_err(db_err)?;
        let r = t.remove(ns).map_err(db_err)?.is_some();
        Ok(r)
    }
}

/// Decode a JSON record.
pub fn decode<T: DeserializeOwned>(what: &str, raw: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(raw).with_context(|| format!("metadata database: corrupt {what} record"))
}

/// Encode a JSON record.
pub fn encode<T: Serialize>(v: &T) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(v).context("encode metadata record")
}
