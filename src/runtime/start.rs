//! `start`: open exec.fifo so the blocked init goes on to exec the user's process.

use super::id::ContainerId;
use super::state::{State, EXEC_FIFO};
use super::status::Status;
use crate::oci::hooks::{self, Point};
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The init holds its end of the fifo until execve closes it: end-of-file means the
/// user's process is running (or the init died). Bounded, so a stuck startContainer hook
/// cannot hang `start` forever.
fn wait_for_exec(fifo: &OwnedFd) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut buf = [0u8; 64];
    while std::time::Instant::now() < deadline {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fifo), &mut buf) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

pub fn start(root: &Path, id: &ContainerId) -> Result<()> {
    start_loaded(root, &State::load(root, id)?)
}

/// [`start`] of a container whose state the caller has loaded already.
pub fn start_loaded(root: &Path, st: &State) -> Result<()> {
    match st.status(root) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let fifo_path = st.dir(root).join(EXEC_FIFO);
    let fd = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open exec fifo {}", fifo_path.display()))?;
    // SAFETY: open returned a fresh descriptor we own.
    let fifo = unsafe { OwnedFd::from_raw_fd(fd) };
    // The init opens the fifo for writing once we hold the read end, then writes one byte.
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16)).context("poll exec fifo")?;
        if n > 0 {
            let mut buf = [0u8; 8];
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&fifo), &mut buf) {
                Ok(n) if n > 0 => break,
                Ok(_) => bail!("cannot start an already running container"),
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(e).context("read exec fifo"),
            }
        }
        if !st.is_alive() {
            bail!("cannot start a container that has stopped");
        }
    }
    std::fs::remove_file(&fifo_path)
        .with_context(|| format!("remove exec fifo {}", fifo_path.display()))?;
    wait_for_exec(&fifo);
    let state = serde_json::to_vec(&st.oci_state(Status::Running))?;
    if let Err(e) = hooks::run(st.config.hooks().as_ref(), Point::Poststart, &state) {
        // runc: a failing poststart hook kills the container.
        let _ = super::kill::signal_init(st, nix::sys::signal::Signal::SIGKILL);
        return Err(e);
    }
    Ok(())
}
