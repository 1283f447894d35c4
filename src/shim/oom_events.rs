//! OOM events: the container's [`OomNotifier`](crate::linux::cgroups::OomNotifier) (v1
//! eventfd or v2 memory.events, whichever the host has) polled by the shim's one
//! [`super::io_loop`] thread; each OOM calls back (the task service publishes `/tasks/oom`).

use std::fs::File;
use std::os::fd::AsFd;

use anyhow::{Context, Result};

use crate::linux::cgroups::{Manager, OomEvent};

/// Watches the memory cgroup of `pid`, calling `on_oom` for every OOM (on the io thread)
/// until the cgroup is removed.
pub fn watch(pid: u32, on_oom: impl Fn() + Send + 'static) -> Result<()> {
    let mut notifier = Manager::for_pid(pid)?.oom_notifier()?;
    // The io loop polls a descriptor of its own; reading goes through the notifier (the
    // same open file), which also keeps v2's last-seen counter.
    let fd = File::from(
        notifier
            .as_fd()
            .try_clone_to_owned()
            .context("dup the oom notification fd")?,
    );
    super::io_loop::watch(fd, move |_| match notifier.read_event() {
        Ok(Some(OomEvent::Oom)) => {
            on_oom();
            true
        }
        Ok(None) => true,
        Ok(Some(OomEvent::CgroupRemoved)) | Err(_) => false,
    })
    .context("watch for oom")
}
