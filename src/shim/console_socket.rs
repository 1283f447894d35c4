//! The console socket: a unix socket the runtime connects to (`--console-socket`) to send
//! the pty master of a terminal process by SCM_RIGHTS.

use std::fs::File;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long the runtime may take to send the master after it was asked to.
const RECEIVE_TIMEOUT_MS: u16 = 10_000;

/// A listening console socket in its own private directory; removed on drop.
pub struct ConsoleSocket {
    listener: UnixListener,
    dir: PathBuf,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ocibox-pty-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)
            .with_context(|| format!("create console socket directory {}", dir.display()))?;
        let path = dir.join("pty.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("listen on console socket {}", path.display()))?;
        Ok(ConsoleSocket {
            listener,
            dir,
            path,
        })
    }

    /// Accepts the runtime's connection and returns the pty master it sends.
    pub fn receive_master(&self) -> Result<File> {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&self.listener),
            PollFlags::POLLIN,
        )];
        let n = poll(&mut fds, PollTimeout::from(RECEIVE_TIMEOUT_MS))
            .context("wait for the runtime on the console socket")?;
        if n == 0 {
            bail!("runtime did not send a terminal on {}", self.path.display());
        }
        let (conn, _) = self
            .listener
            .accept()
            .context("accept on the console socket")?;
        // The first fd is the master; extras are closed (linux::fd_passing's rule).
        let mut buf = [0u8; 4096];
        let got = crate::linux::fd_passing::recv(std::os::fd::AsFd::as_fd(&conn), &mut buf)
            .context("receive the pty master")?;
        if let Some(fd) = got.fd {
            return Ok(File::from(fd));
        }
        bail!("the runtime's console message carried no file descriptor")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
