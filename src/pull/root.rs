//! The stores of an image root in containerd's layout, opened together: the content store
//! (`io.containerd.content.v1.content`), the metadata database
//! (`io.containerd.metadata.v1.redb/meta.db`) and the snapshotters
//! (`io.containerd.snapshotter.v1.<name>`) with their records in that database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::content::Store;
use crate::metadata::namespaced_content::NamespacedContent;
use crate::metadata::Database;
use crate::snapshot::{overlay, Driver, RedbStore, Snapshotter};

pub struct ImageRoot {
    pub root: PathBuf,
    pub store: Store,
    pub db: Arc<Database>,
}

impl ImageRoot {
    pub fn open(root: &Path) -> Result<ImageRoot> {
        let store = Store::open(root.join("io.containerd.content.v1.content"))?;
        let db = Arc::new(Database::open(
            &root.join("io.containerd.metadata.v1.redb/meta.db"),
        )?);
        Ok(ImageRoot {
            root: root.to_path_buf(),
            store,
            db,
        })
    }

    /// The snapshotter `name` (`overlayfs`, `native`) as namespace `ns` sees it.
    pub fn snapshotter(&self, ns: &str, name: &str) -> Result<Snapshotter> {
        let driver = match name {
            "overlayfs" => Driver::Overlay {
                index_off: overlay::supports_index(),
            },
            "native" => Driver::Native,
            other => bail!("snapshotter {other:?} is not supported (overlayfs, native)"),
        };
        Snapshotter::with_store(
            &self
                .root
                .join(format!("io.containerd.snapshotter.v1.{name}")),
            driver,
            Box::new(RedbStore::new(self.db.clone(), ns, name)),
        )
    }

    /// The content store as namespace `ns` sees it.
    pub fn content(&self, ns: &str) -> NamespacedContent<'_> {
        NamespacedContent {
            db: &self.db,
            store: &self.store,
            ns: ns.to_owned(),
            lease: None,
        }
    }
}
