//! The state every service shares: the configuration, the stores, the daemon's identity.
//! Services hold an `Arc<Daemon>`; each piece is safe to use from several requests at once.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;

use crate::content::Store;
use crate::daemon::config::Config;
use crate::daemon::events::Exchange;
use crate::daemon::gc::Gc;
use crate::daemon::idle::Activity;
use crate::daemon::runtime_v2::TaskManager;
use crate::daemon::snapshotters::Snapshotters;
use crate::metadata::db::Database;

pub struct Daemon {
    pub config: Config,
    /// The metadata database (namespaces, images, containers, leases, content labels,
    /// snapshots), one redb file.
    pub db: Arc<Database>,
    /// The content store under the root (containerd's layout).
    pub content: Arc<Store>,
    /// This daemon's identity (Introspection.Server's uuid), kept under the root so it
    /// survives restarts as containerd's does.
    pub uuid: String,
    pub started: SystemTime,
    /// What services changed, for Events.Subscribe.
    pub events: Exchange,
    /// The snapshotters (`overlayfs`, `native`) under the root.
    pub snapshotters: Arc<Snapshotters>,
    /// Garbage collection, scheduled after deletes.
    pub gc: Gc,
    /// The live tasks and their shims.
    pub tasks: TaskManager,
    /// Requests and shim events as they come, for the idle trim.
    pub activity: Arc<Activity>,
}

impl Daemon {
    /// Open (or create) the stores under `config.root`.
    pub fn open(config: Config) -> Result<Arc<Daemon>> {
        let db = Arc::new(Database::open(&config.metadata_path())?);
        let content = Arc::new(Store::open(config.content_root())?);
        let uuid = crate::daemon::server::load_or_make_uuid(&config.root)?;
        let snapshotters = Arc::new(Snapshotters::open(&config.root, db.clone())?);
        let tasks = TaskManager::new(&config);
        Ok(Arc::new(Daemon {
            tasks,
            config,
            db,
            content,
            uuid,
            started: SystemTime::now(),
            events: Exchange::new(),
            snapshotters,
            gc: Gc::new(),
            activity: Activity::new(),
        }))
    }
}
