//! The foreground terminal of `run` / `exec -t` without a console socket: bytes relayed
//! between our stdin/stdout and the container's pty master, our terminal in raw mode, its
//! window size followed (the caller's signal loop calls [`Relay::resize_from_host_terminal`]
//! on SIGWINCH).
//!
//! "Our terminal" is found as runc finds its host console: stderr, stdout or stdin,
//! whichever is a terminal first, else the controlling terminal `/dev/tty`. runc refuses
//! to run when there is none ("open /dev/tty: no such device or address"); ocibox relays
//! anyway (stdio redirected to files, as in CI), without raw mode or window size.
//!
//! The output side stops when the pty hangs up (every slave closed) or, once the process
//! has exited, when [`Relay::finish`] has drained what it wrote: a background process
//! that keeps the slave open (no PID namespace) must not keep the runtime waiting, as
//! runc does not wait for it either.

use crate::linux::console;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Relay {
    master: Arc<OwnedFd>,
    /// Our terminal and its settings before raw mode.
    host: Option<(OwnedFd, Termios)>,
    output: Option<JoinHandle<()>>,
    /// Closing it tells the output thread to drain and stop.
    stop: Option<OwnedFd>,
}

impl Relay {
    /// Put our terminal (when there is one) in raw mode and start relaying.
    pub fn start(master: OwnedFd) -> Result<Relay> {
        let (stop_rd, stop_wr) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe to stop the relay")?;
        let host = host_terminal().and_then(|fd| {
            let saved = termios::tcgetattr(&fd).ok()?;
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(&fd, SetArg::TCSANOW, &raw);
            Some((fd, saved))
        });
        // runc clears ONLCR on a pty it relays itself (one handed to a console socket keeps
        // it): the container's "\n" reaches our stdout as "\n", not "\r\n".
        clear_onlcr(&master);
        let master = Arc::new(master);
        let mut relay = Relay {
            master: master.clone(),
            host,
            output: None,
            stop: Some(stop_wr),
        };
        relay.resize_from_host_terminal();
        let m_in = master.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || write_all(&m_in, &buf[..n]).is_err() {
                    break;
                }
            }
        });
        relay.output = Some(std::thread::spawn(move || copy_output(&master, &stop_rd)));
        Ok(relay)
    }

    /// Copy our terminal's window size to the container's.
    pub fn resize_from_host_terminal(&self) {
        if let Some((fd, _)) = &self.host {
            if let Ok((rows, cols)) = console::window_size(fd.as_fd()) {
                let _ = console::set_window_size(self.master.as_fd(), rows, cols);
            }
        }
    }

    /// The process has exited: copy out what it left in the pty, then restore our terminal.
    pub fn finish(mut self) {
        self.stop.take();
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((fd, saved)) = &self.host {
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
        }
    }
}

/// stderr, stdout or stdin if one is a terminal, else the controlling terminal.
/// Best effort: a pty whose settings cannot be read is relayed as it is.
fn clear_onlcr(master: &OwnedFd) {
    if let Ok(mut t) = termios::tcgetattr(master) {
        t.output_flags.remove(termios::OutputFlags::ONLCR);
        let _ = termios::tcsetattr(master, SetArg::TCSANOW, &t);
    }
}

fn host_terminal() -> Option<OwnedFd> {
    let stdio = [
        std::io::stderr().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stdin().as_fd().try_clone_to_owned(),
    ];
    for fd in stdio.into_iter().flatten() {
        if termios::tcgetattr(&fd).is_ok() {
            return Some(fd);
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
        .ok()
        .map(OwnedFd::from)
}

/// Once the process has exited, how long the output may stay quiet before we stop
/// waiting for more, and how long draining may take at most (a background process
/// could write forever). The pty moves data to the master asynchronously, so "nothing
/// readable right now" is not yet "all read".
const DRAIN_IDLE_MS: u16 = 100;
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// master → stdout until the pty hangs up (EIO once the last slave is closed) or, after
/// `stop` is closed, until it has been quiet for a moment.
fn copy_output(master: &OwnedFd, stop: &OwnedFd) {
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 4096];
    let mut drain_until: Option<Instant> = None;
    loop {
        let timeout = match drain_until {
            None => PollTimeout::NONE,
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now()).as_millis();
                if left == 0 {
                    return;
                }
                PollTimeout::from(left.min(u128::from(DRAIN_IDLE_MS)) as u16)
            }
        };
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if drain_until.is_none() {
            fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => return, // quiet while draining
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
        let master_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        if fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|e| !e.is_empty())
        {
            drain_until = Some(Instant::now() + DRAIN_MAX);
        }
        if master_ev.is_empty() {
            continue;
        }
        // Readable (or hung up: read says EIO): read cannot block, we are the only reader.
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => return,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    return;
                }
            }
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(_) => return,
        }
    }
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> nix::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
