//! The runtime v2 manager, as containerd 1.6's: tasks run in shims driven over ttrpc with
//! the shim v2 task API, so ocibox's own shim and Debian's containerd-shim-runc-v2 both
//! work under ociboxd.
//!
//! - [`binary`]: runtime name → shim binary, and the shim's `start`/`delete` command lines.
//! - [`bundle`]: `<state>/io.containerd.runtime.v2.task/<ns>/<id>` (config.json, rootfs,
//!   the shim's log fifo), made for Create and removed after Delete.
//! - [`shim_log`]: copies what a shim writes to its log fifo into the daemon's log.
//! - [`shim_client`]: one shim's ttrpc connection (namespace metadata, errors as kinds,
//!   a dead shim told apart from an error answer), on [`ttrpc_conn`], a ttrpc client
//!   connection driven by the daemon's runtime.
//! - [`manager`]: the live tasks by namespace and id; create, delete, and the cleanup of a
//!   shim that died, as soon as its connection closes.
//! - [`recovery`]: on start, reconnect to every live shim through its bundle's `address`
//!   file and reap the dead ones.

pub mod binary;
pub mod bundle;
pub mod manager;
pub mod recovery;
pub mod shim_client;
pub mod shim_log;
pub mod ttrpc_conn;

pub use manager::TaskManager;
