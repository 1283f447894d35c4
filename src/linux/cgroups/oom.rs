//! Waiting for OOM kills in a cgroup: v1 registers an eventfd on memory.oom_control through
//! cgroup.event_control; v2 watches memory.events with inotify and reads the oom_kill counter.
//! Either way the notifier holds one fd that can be polled, and `wait()` blocks.

use super::fsutil::{read_flat_keyed, write_file};
use anyhow::{Context, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

#[derive(Debug)]
enum Kind {
    /// The eventfd, and the memory.oom_control fd the registration refers to.
    V1 { _control: std::fs::File },
    /// The inotify fd and the last oom_kill count seen.
    V2 { last: u64 },
}

/// What woke a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// A process in the cgroup was killed (or, v1, the cgroup hit its limit).
    Oom,
    /// The cgroup is gone; no more events will come.
    CgroupRemoved,
}

#[derive(Debug)]
pub struct OomNotifier {
    fd: OwnedFd,
    dir: PathBuf,
    kind: Kind,
}

impl OomNotifier {
    pub fn v1(memory_dir: &Path) -> Result<OomNotifier> {
        let control = std::fs::File::open(memory_dir.join("memory.oom_control"))
            .with_context(|| format!("open {}/memory.oom_control", memory_dir.display()))?;
        // SAFETY: eventfd has no pointer arguments; a non-negative result is a new fd we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(std::io::Error::last_os_error()).context("eventfd");
        }
        // SAFETY: efd was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(efd) };
        write_file(
            memory_dir,
            "cgroup.event_control",
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )
        .context("register OOM eventfd")?;
        Ok(OomNotifier {
            fd,
            dir: memory_dir.to_path_buf(),
            kind: Kind::V1 { _control: control },
        })
    }

    pub fn v2(dir: &Path) -> Result<OomNotifier> {
        let events = dir.join("memory.events");
        // SAFETY: inotify_init1 has no pointer arguments.
        let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if ifd < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: ifd was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
        let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .context("memory.events path contains a NUL byte")?;
        // SAFETY: fd is a valid inotify fd and c a NUL-terminated path alive for the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("watch {}", events.display()));
        }
        let last = read_flat_keyed(dir, "memory.events")?
            .get("oom_kill")
            .copied()
            .unwrap_or(0);
        Ok(OomNotifier {
            fd,
            dir: dir.to_path_buf(),
            kind: Kind::V2 { last },
        })
    }

    fn read_fd(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            // SAFETY: buf is a valid writable buffer of buf.len() bytes; fd is ours.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("read OOM notification fd");
            }
        }
    }

    /// Block until the next OOM event (or the cgroup's removal).
    pub fn wait(&mut self) -> Result<OomEvent> {
        loop {
            if let Some(e) = self.read_event()? {
                return Ok(e);
            }
        }
    }

    /// Read what woke the fd once (call it when the fd is readable, e.g. from a poll loop:
    /// it then does not block). None: the wake-up was not an OOM (v2: memory.events changed
    /// in another counter).
    pub fn read_event(&mut self) -> Result<Option<OomEvent>> {
        if matches!(self.kind, Kind::V1 { .. }) {
            let mut buf = [0u8; 8];
            self.read_fd(&mut buf)?;
            // The kernel also signals the eventfd when the cgroup is removed.
            if !self.dir.join("cgroup.event_control").exists() {
                return Ok(Some(OomEvent::CgroupRemoved));
            }
            return Ok(Some(OomEvent::Oom));
        }
        let mut buf = [0u8; 4096];
        self.read_fd(&mut buf)?;
        if !self.dir.join("memory.events").exists() {
            return Ok(Some(OomEvent::CgroupRemoved));
        }
        let now = read_flat_keyed(&self.dir, "memory.events")?
            .get("oom_kill")
            .copied()
            .unwrap_or(0);
        if let Kind::V2 { last } = &mut self.kind {
            if now > *last {
                *last = now;
                return Ok(Some(OomEvent::Oom));
            }
        }
        Ok(None)
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomNotifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
