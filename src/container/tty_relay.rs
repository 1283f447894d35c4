//! The foreground terminal of `run -t` without a console socket: our terminal in raw
//! mode, bytes relayed both ways to the container's pty master, window size followed.

use anyhow::Result;
use nix::sys::termios::{self, SetArg, Termios};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Relay {
    master: Arc<OwnedFd>,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

impl Relay {
    /// Put stdin (when it is a terminal) in raw mode and start relaying.
    pub fn start(master: OwnedFd) -> Result<Relay> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        let master = Arc::new(master);
        let mut relay = Relay {
            master: master.clone(),
            saved,
            output: None,
        };
        relay.resize_from_stdin();
        let m_in = master.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || nix::unistd::write(m_in.as_fd(), &buf[..n]).is_err() {
                    break;
                }
            }
        });
        let m_out = master.clone();
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut out = std::io::stdout().lock();
            // EIO once the last slave descriptor is closed: the container is gone.
            while let Ok(n) = nix::unistd::read(m_out.as_raw_fd(), &mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        });
        relay.output = Some(output);
        Ok(relay)
    }

    /// Copy our terminal's window size to the container's.
    pub fn resize_from_stdin(&self) {
        // SAFETY: winsize is plain data; zeroed is valid.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
        if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
            // SAFETY: TIOCSWINSZ reads one winsize from `ws`.
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    }

    /// Drain the container's output and restore our terminal.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}
