//! Where snapshot records live. A trait so the redb metadata database can replace the JSON
//! file without touching the snapshotter: load the whole state, save it whole (the JSON file
//! is replaced atomically: write, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::snapshotter::Kind;
use super::usage::Usage;

/// One snapshot's record, under its key (active/view) or name (committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The directory number under `snapshots/`.
    pub id: u64,
    pub kind: Kind,
    pub parent: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub updated: u64,
    /// Fixed at commit.
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub next_id: u64,
    pub snapshots: BTreeMap<String, Record>,
}

pub trait SnapshotStore: Send + Sync {
    fn load(&self) -> Result<State>;
    fn save(&self, state: &State) -> Result<()>;
}

/// Records in memory only (tests, and a daemon run with a throwaway root).
#[derive(Default)]
pub struct MemoryStore(Mutex<State>);

impl SnapshotStore for MemoryStore {
    fn load(&self) -> Result<State> {
        Ok(self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("store poisoned"))?
            .clone())
    }
    fn save(&self, state: &State) -> Result<()> {
        *self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("store poisoned"))? = state.clone();
        Ok(())
    }
}

/// Records in one JSON file.
pub struct JsonStore {
    path: PathBuf,
}

impl JsonStore {
    pub fn new(path: &Path) -> Self {
        JsonStore {
            path: path.to_path_buf(),
        }
    }
}

impl SnapshotStore for JsonStore {
    fn load(&self) -> Result<State> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("parse snapshot metadata {}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", self.path.display())),
        }
    }

    fn save(&self, state: &State) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec(state)?;
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("rename {} into place", tmp.display()))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
