//! OOM notification: on cgroup v1, an eventfd registered on the container's
//! `memory.oom_control` through `cgroup.event_control`; each wake-up while the cgroup
//! still exists is one `/tasks/oom` event, read by the shim's [`super::io_loop`]. (Unified v2 hosts: not watched yet.)

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};

use anyhow::{Context, Result};

use super::cgroup_paths::CgroupPaths;

/// Watches the memory cgroup of `pid`, calling `on_oom` for every OOM event (on the io
/// thread) until the cgroup is removed. No memory cgroup: nothing is watched.
pub fn watch(pid: u32, on_oom: impl Fn() + Send + 'static) -> Result<()> {
    let paths = CgroupPaths::of_pid(pid)?;
    let Some(dir) = paths.v1("memory").map(|d| d.to_path_buf()) else {
        return Ok(());
    };
    // SAFETY: eventfd takes no pointers; the returned fd is owned by the File below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(std::io::Error::last_os_error()).context("create oom eventfd");
    }
    // SAFETY: efd is a fresh eventfd nothing else owns.
    let event = unsafe { File::from_raw_fd(efd) };
    let control = File::open(dir.join("memory.oom_control"))
        .with_context(|| format!("open memory.oom_control in {}", dir.display()))?;
    let mut ec = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))
        .with_context(|| format!("open cgroup.event_control in {}", dir.display()))?;
    ec.write_all(format!("{} {}", event.as_raw_fd(), control.as_raw_fd()).as_bytes())
        .with_context(|| format!("register oom eventfd in {}", dir.display()))?;
    super::io_loop::watch(event, move |event| {
        let _control = &control;
        let mut buf = [0u8; 8];
        // The eventfd also fires when the cgroup goes away.
        if event.read_exact(&mut buf).is_err() || !dir.exists() {
            return false;
        }
        on_oom();
        true
    })
    .context("watch for oom")?;
    Ok(())
}
