//! Mounting, shared by the runtime's rootfs setup, the shim's rootfs mounts and (next) the
//! overlay snapshotter: [`options`] turns mount(8)-style options into mount(2) arguments
//! (runc's table, one copy); [`onto_target`] mounts a list of containerd-style mounts
//! (type, source, options) onto one directory, all or nothing.

pub mod onto_target;
pub mod options;

pub use onto_target::{mount_all, unmount_all, Mount};
pub use options::MountOptions;
