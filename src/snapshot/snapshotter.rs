//! The snapshot model both drivers share, as containerd's snapshotter API has it. Active
//! snapshots (Prepare) are writable and addressed by key; a View is a read-only active one;
//! Commit turns an active snapshot into a committed one under a name (for image layers: the
//! chain ID), which later snapshots name as parent. A snapshot with children cannot be
//! removed. Each snapshot is a numbered directory under `snapshots/`; it is made under a
//! temporary name and renamed into place, and removed by renaming it aside first, so a crash
//! never leaves a half-made directory under a live number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use super::store::{JsonStore, Record, SnapshotStore, State};
use super::usage::{disk_usage, Usage};
use super::{native, overlay};
use crate::errdefs::ErrorKind;
use crate::linux::mount::Mount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    View,
    Active,
    Committed,
}

/// What Stat and Walk report (containerd's `snapshots.Info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    /// "" when there is none.
    pub parent: String,
    pub kind: Kind,
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub updated: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `index_off`: the kernel's overlay has an `index` parameter, so mounts say
    /// `index=off` (as containerd does: one lowerdir set may be mounted many times).
    Overlay {
        index_off: bool,
    },
    Native,
}

pub struct Snapshotter {
    root: PathBuf,
    driver: Driver,
    store: Box<dyn SnapshotStore>,
    lock: Mutex<()>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Snapshotter {
    /// The overlayfs snapshotter rooted at `root` (the daemon's
    /// `<root>/io.containerd.snapshotter.v1.overlayfs`), records in `metadata.json` there.
    pub fn overlay(root: &Path) -> Result<Snapshotter> {
        let driver = Driver::Overlay {
            index_off: overlay::supports_index(),
        };
        Self::with_store(
            root,
            driver,
            Box::new(JsonStore::new(&root.join("metadata.json"))),
        )
    }

    /// The copying snapshotter rooted at `root` (`…/io.containerd.snapshotter.v1.native`).
    pub fn native(root: &Path) -> Result<Snapshotter> {
        Self::with_store(
            root,
            Driver::Native,
            Box::new(JsonStore::new(&root.join("metadata.json"))),
        )
    }

    pub fn with_store(
        root: &Path,
        driver: Driver,
        store: Box<dyn SnapshotStore>,
    ) -> Result<Snapshotter> {
        std::fs::create_dir_all(root.join("snapshots"))
            .with_context(|| format!("create snapshotter root {}", root.display()))?;
        Ok(Snapshotter {
            root: root.to_path_buf(),
            driver,
            store,
            lock: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// Where a snapshot's files are: `snapshots/<id>/fs` (overlay) or `snapshots/<id>`
    /// (native).
    pub fn fs_dir(&self, id: u64) -> PathBuf {
        match self.driver {
            Driver::Overlay { .. } => self.snapshot_dir(id).join("fs"),
            Driver::Native => self.snapshot_dir(id),
        }
    }

    /// The files of the snapshot `key` (for an active one: where to write).
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        let state = self.store.load()?;
        Ok(self.fs_dir(get(&state, key)?.id))
    }

    fn locked<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let _g = self
            .lock
            .lock()
            .map_err(|_| anyhow!("snapshotter lock poisoned"))?;
        let mut state = self.store.load()?;
        f(&mut state)
    }

    pub fn prepare(
        &self,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    pub fn view(
        &self,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let (id, parents) = self.locked(|state| {
            if key.is_empty() {
                return Err(ErrorKind::InvalidArgument.err("snapshot key must not be empty"));
            }
            if state.snapshots.contains_key(key) {
                return Err(ErrorKind::AlreadyExists.err(format!("snapshot {key}: already exists")));
            }
            let parent_ids = committed_parent_ids(state, parent)?;
            state.next_id += 1;
            let id = state.next_id;
            let tmp = self.root.join("snapshots").join(format!("new-{id}"));
            let made = (|| -> Result<()> {
                match self.driver {
                    Driver::Overlay { .. } => {
                        std::fs::create_dir_all(tmp.join("fs"))?;
                        // The merged root's owner is the upper dir's: it takes the parent's
                        // (containerd does; a remapped image's root stays its mapped root's).
                        if let Some(&p) = parent_ids.first() {
                            use std::os::unix::fs::MetadataExt;
                            let st = std::fs::metadata(self.fs_dir(p))?;
                            std::os::unix::fs::lchown(
                                tmp.join("fs"),
                                Some(st.uid()),
                                Some(st.gid()),
                            )?;
                        }
                        if kind == Kind::Active {
                            std::fs::create_dir_all(tmp.join("work"))?;
                        }
                    }
                    Driver::Native => match parent_ids.first() {
                        Some(&p) => native::copy_snapshot(&self.fs_dir(p), &tmp)?,
                        None => std::fs::create_dir_all(&tmp)?,
                    },
                }
                std::fs::rename(&tmp, self.snapshot_dir(id))?;
                Ok(())
            })();
            if let Err(e) = made {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e).with_context(|| format!("create snapshot {key}"));
            }
            let now = now_ns();
            state.snapshots.insert(
                key.to_string(),
                Record {
                    id,
                    kind,
                    parent: (!parent.is_empty()).then(|| parent.to_string()),
                    labels,
                    created: now,
                    updated: now,
                    usage: None,
                },
            );
            if let Err(e) = self.store.save(state) {
                let _ = std::fs::remove_dir_all(self.snapshot_dir(id));
                return Err(e);
            }
            Ok((id, parent_ids))
        })?;
        Ok(self.mounts_for(kind, id, &parents))
    }

    /// The mounts of an active snapshot or view.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let state = self.store.load()?;
        let rec = get(&state, key)?;
        if rec.kind == Kind::Committed {
            return Err(ErrorKind::FailedPrecondition.err(format!(
                "snapshot {key} is committed: mounts need an active snapshot or view"
            )));
        }
        let parents = match &rec.parent {
            Some(p) => parent_ids(&state, p)?,
            None => Vec::new(),
        };
        Ok(self.mounts_for(rec.kind, rec.id, &parents))
    }

    fn mounts_for(&self, kind: Kind, id: u64, parents: &[u64]) -> Vec<Mount> {
        match self.driver {
            Driver::Overlay { index_off } => {
                let lowers: Vec<PathBuf> = parents.iter().map(|&p| self.fs_dir(p)).collect();
                overlay::mounts(kind, &self.snapshot_dir(id), &lowers, index_off)
            }
            Driver::Native => native::mounts(kind, &self.fs_dir(id)),
        }
    }

    pub fn commit(&self, name: &str, key: &str, labels: BTreeMap<String, String>) -> Result<()> {
        self.locked(|state| {
            let rec = get(state, key)?.clone();
            if rec.kind != Kind::Active {
                return Err(ErrorKind::FailedPrecondition
                    .err(format!("snapshot {key} is not active: failed precondition")));
            }
            if state.snapshots.contains_key(name) {
                return Err(
                    ErrorKind::AlreadyExists.err(format!("snapshot {name}: already exists"))
                );
            }
            let usage = disk_usage(&self.fs_dir(rec.id))?;
            if let Driver::Overlay { .. } = self.driver {
                // The work dir is only for a mounted upper; a committed layer is a lower.
                let _ = std::fs::remove_dir_all(self.snapshot_dir(rec.id).join("work"));
            }
            state.snapshots.remove(key);
            state.snapshots.insert(
                name.to_string(),
                Record {
                    kind: Kind::Committed,
                    labels: if labels.is_empty() {
                        rec.labels.clone()
                    } else {
                        labels
                    },
                    updated: now_ns(),
                    usage: Some(usage),
                    ..rec
                },
            );
            self.store.save(state)
        })
    }

    /// Adopt `dir` (a layer unpacked by [`crate::unpack`] in overlay form, on the same
    /// filesystem, e.g. under [`Snapshotter::unpack_dir`]) as the committed snapshot `name`
    /// on top of `parent` (committed, or "" for a base layer). This is how layers unpacked in
    /// parallel become a chain: each unpacks alone, and they are committed in order.
    pub fn commit_dir(
        &self,
        name: &str,
        parent: &str,
        dir: &Path,
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        self.locked(|state| {
            if state.snapshots.contains_key(name) {
                return Err(
                    ErrorKind::AlreadyExists.err(format!("snapshot {name}: already exists"))
                );
            }
            let parent_ids = committed_parent_ids(state, parent)?;
            state.next_id += 1;
            let id = state.next_id;
            let tmp = self.root.join("snapshots").join(format!("new-{id}"));
            let made = (|| -> Result<()> {
                match self.driver {
                    Driver::Overlay { .. } => {
                        std::fs::create_dir_all(&tmp)?;
                        std::fs::rename(dir, tmp.join("fs"))?;
                    }
                    Driver::Native => {
                        match parent_ids.first() {
                            Some(&p) => native::copy_snapshot(&self.fs_dir(p), &tmp)?,
                            None => std::fs::create_dir_all(&tmp)?,
                        }
                        native::apply_overlay_diff(dir, &tmp)?;
                        std::fs::remove_dir_all(dir)?;
                    }
                }
                std::fs::rename(&tmp, self.snapshot_dir(id))?;
                Ok(())
            })();
            if let Err(e) = made {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e).with_context(|| format!("commit snapshot {name}"));
            }
            let usage = disk_usage(&self.fs_dir(id))?;
            let now = now_ns();
            state.snapshots.insert(
                name.to_string(),
                Record {
                    id,
                    kind: Kind::Committed,
                    parent: (!parent.is_empty()).then(|| parent.to_string()),
                    labels,
                    created: now,
                    updated: now,
                    usage: Some(usage),
                },
            );
            self.store.save(state)
        })
    }

    /// A path that does not exist yet, on the snapshotter's filesystem, for
    /// [`crate::unpack::unpack_layer`] to unpack a layer into before [`Self::commit_dir`].
    pub fn unpack_dir(&self, tag: &str) -> Result<PathBuf> {
        let base = self.root.join("unpack");
        std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
        let safe: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Ok(base.join(format!("{safe}-{}-{}", std::process::id(), now_ns())))
    }

    pub fn remove(&self, key: &str) -> Result<()> {
        self.locked(|state| {
            let rec = get(state, key)?.clone();
            if state
                .snapshots
                .values()
                .any(|r| r.parent.as_deref() == Some(key))
            {
                return Err(ErrorKind::FailedPrecondition.err(format!(
                    "cannot remove snapshot {key} with child: failed precondition"
                )));
            }
            let dir = self.snapshot_dir(rec.id);
            let aside = self.root.join("snapshots").join(format!("rm-{}", rec.id));
            let renamed = std::fs::rename(&dir, &aside).is_ok();
            state.snapshots.remove(key);
            self.store.save(state)?;
            if renamed {
                std::fs::remove_dir_all(&aside)
                    .with_context(|| format!("remove {}", aside.display()))?;
            }
            Ok(())
        })
    }

    pub fn stat(&self, key: &str) -> Result<Info> {
        let state = self.store.load()?;
        Ok(info(key, get(&state, key)?))
    }

    /// Change labels (containerd's Update: `fieldpaths` "labels" or "labels.<key>"; none
    /// means all labels).
    pub fn update(&self, new: &Info, fieldpaths: &[&str]) -> Result<Info> {
        self.locked(|state| {
            let rec = state.snapshots.get_mut(&new.name).ok_or_else(|| {
                ErrorKind::NotFound.err(format!("snapshot {} does not exist: not found", new.name))
            })?;
            if fieldpaths.is_empty() {
                rec.labels = new.labels.clone();
            }
            for f in fieldpaths {
                if *f == "labels" {
                    rec.labels = new.labels.clone();
                } else if let Some(k) = f.strip_prefix("labels.") {
                    match new.labels.get(k) {
                        Some(v) => rec.labels.insert(k.to_string(), v.clone()),
                        None => rec.labels.remove(k),
                    };
                } else {
                    return Err(ErrorKind::InvalidArgument.err(format!(
                        "cannot update {f:?} field on snapshot {}: invalid argument",
                        new.name
                    )));
                }
            }
            rec.updated = now_ns();
            let out = info(&new.name, rec);
            self.store.save(state)?;
            Ok(out)
        })
    }

    /// Committed: what it held at commit; active: measured now.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let state = self.store.load()?;
        let rec = get(&state, key)?;
        match rec.usage {
            Some(u) => Ok(u),
            None => disk_usage(&self.fs_dir(rec.id)),
        }
    }

    pub fn walk(&self, mut f: impl FnMut(&Info) -> Result<()>) -> Result<()> {
        let state = self.store.load()?;
        for (k, r) in &state.snapshots {
            f(&info(k, r))?;
        }
        Ok(())
    }
}

fn get<'a>(state: &'a State, key: &str) -> Result<&'a Record> {
    state
        .snapshots
        .get(key)
        .ok_or_else(|| ErrorKind::NotFound.err(format!("snapshot {key} does not exist: not found")))
}

/// The directory ids of a new snapshot's parent chain (none for no parent): the parent must
/// exist and be committed, as containerd requires of Prepare, View and a committed directory.
fn committed_parent_ids(state: &State, parent: &str) -> Result<Vec<u64>> {
    if parent.is_empty() {
        return Ok(Vec::new());
    }
    let p = state.snapshots.get(parent).ok_or_else(|| {
        ErrorKind::NotFound.err(format!(
            "parent snapshot {parent} does not exist: not found"
        ))
    })?;
    if p.kind != Kind::Committed {
        return Err(ErrorKind::InvalidArgument.err(format!(
            "parent {parent:?} is not committed snapshot: invalid argument"
        )));
    }
    parent_ids(state, parent)
}

/// The directory ids of `name` and its ancestors, nearest first (overlay's lowerdir order).
fn parent_ids(state: &State, name: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next {
        let r = get(state, &n)?;
        out.push(r.id);
        if out.len() > 500 {
            return Err(
                ErrorKind::FailedPrecondition.err("snapshot parent chain too long or a loop")
            );
        }
        next = r.parent.clone();
    }
    Ok(out)
}

fn info(name: &str, r: &Record) -> Info {
    Info {
        name: name.to_string(),
        parent: r.parent.clone().unwrap_or_default(),
        kind: r.kind,
        labels: r.labels.clone(),
        created: r.created,
        updated: r.updated,
    }
}
