//! Linux primitives the runtime is built from, one concept per module.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod fd_passing;
pub mod fds;
pub mod go_errno;
pub mod lsm;
pub mod mount;
pub mod mountinfo;
pub mod namespaces;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
#[cfg(test)]
pub(crate) mod test_child;
pub mod user;
