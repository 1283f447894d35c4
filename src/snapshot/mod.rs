//! Snapshots with containerd's semantics: Prepare/View/Commit/Remove/Stat/Update/Usage/
//! Walk/Mounts over keys and committed names, parents by name (image layers are committed
//! under their chain ID, see [`crate::image::chain_id`]), labels. Two drivers share that core
//! ([`snapshotter::Snapshotter`]): [`overlay`] (containerd's
//! `io.containerd.snapshotter.v1.overlayfs` layout, `snapshots/<id>/{fs,work}`) and
//! [`native`] (`io.containerd.snapshotter.v1.native`, a full copy per snapshot, for
//! filesystems that cannot host overlay). Mounts come back in containerd's `Mount` form,
//! ready for [`crate::linux::mount::mount_all`].
//!
//! The records live behind [`store::SnapshotStore`]: in the redb metadata database
//! ([`redb_store::RedbStore`], namespaced as containerd's metadata records, what the daemon
//! and the pull use), in a JSON file (`metadata.json`, a snapshotter on its own) or in memory.

pub mod copy_tree;
pub mod native;
pub mod overlay;
pub mod redb_store;
pub mod snapshotter;
pub mod store;
pub mod usage;

pub use redb_store::RedbStore;
pub use snapshotter::{Driver, Info, Kind, Snapshotter};
pub use store::{JsonStore, MemoryStore, SnapshotStore};
pub use usage::Usage;
