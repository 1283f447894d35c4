//! Snapshots with containerd's semantics: Prepare/View/Commit/Remove/Stat/Update/Usage/
//! Walk/Mounts over keys and committed names, parents by name (image layers are committed
//! under their chain ID, see [`crate::image::chain_id`]), labels. Two drivers share that core
//! ([`snapshotter::Snapshotter`]): [`overlay`] (containerd's
//! `io.containerd.snapshotter.v1.overlayfs` layout, `snapshots/<id>/{fs,work}`) and
//! [`native`] (`io.containerd.snapshotter.v1.native`, a full copy per snapshot, for
//! filesystems that cannot host overlay). Mounts come back in containerd's `Mount` form,
//! ready for [`crate::linux::mount::mount_all`].
//!
//! The records live behind [`store::SnapshotStore`]: a JSON file for now
//! (`metadata.json`); the redb metadata database takes over `metadata.db` later.

pub mod copy_tree;
pub mod native;
pub mod overlay;
pub mod snapshotter;
pub mod store;
pub mod usage;

pub use snapshotter::{Driver, Info, Kind, Snapshotter};
pub use store::{JsonStore, MemoryStore, SnapshotStore};
pub use usage::Usage;
