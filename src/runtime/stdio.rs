//! Where a new container process's stdio goes, decided in one place for `create`, `run`
//! and `exec`: no terminal (the process inherits the runtime's stdio), a terminal whose
//! master is sent to `--console-socket`, or a terminal the foreground runtime relays.

use super::tty_relay::Relay;
use crate::linux::console;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// runc's decision for `process.terminal`, `--console-socket` and detaching.
#[derive(Debug, PartialEq, Eq)]
pub enum Stdio {
    /// No terminal: the process gets the runtime's own stdio.
    Inherit,
    /// A terminal; its master goes to the console socket at this path.
    ConsoleSocket(PathBuf),
    /// A terminal relayed by this runtime, which stays in the foreground (`run`, `exec`
    /// without `--detach` and without a console socket).
    Relay,
}

impl Stdio {
    /// `detach` is true for `create` and for `run -d`/`exec -d`: nobody is left to relay.
    pub fn decide(terminal: bool, console_socket: Option<&Path>, detach: bool) -> Result<Stdio> {
        match (terminal, console_socket, detach) {
            (true, Some(path), _) => Ok(Stdio::ConsoleSocket(path.to_path_buf())),
            (true, None, false) => Ok(Stdio::Relay),
            (true, None, true) => {
                bail!("cannot allocate tty if runc will detach without setting console socket")
            }
            (false, Some(_), _) => {
                bail!("cannot use console socket if runc will not detach or allocate tty")
            }
            (false, None, _) => Ok(Stdio::Inherit),
        }
    }

    /// Connect the console socket, or make the socketpair the init sends the master over.
    pub fn open(self) -> Result<Console> {
        match self {
            Stdio::Inherit => Ok(Console {
                init_end: None,
                relay_end: None,
            }),
            Stdio::ConsoleSocket(path) => Ok(Console {
                init_end: Some(console::connect_console_socket(&path)?),
                relay_end: None,
            }),
            Stdio::Relay => {
                let (ours, theirs) = UnixStream::pair().context("console socketpair")?;
                Ok(Console {
                    init_end: Some(OwnedFd::from(theirs)),
                    relay_end: Some(RelayEnd(OwnedFd::from(ours))),
                })
            }
        }
    }
}

/// The opened decision: the socket end the init sends the pty master over (when there is
/// a terminal), and our end of it when we relay.
pub struct Console {
    init_end: Option<OwnedFd>,
    relay_end: Option<RelayEnd>,
}

impl Console {
    /// The descriptor to put in the bootstrap (`console_fd`).
    pub fn init_fd(&self) -> Option<RawFd> {
        self.init_end.as_ref().map(|f| f.as_raw_fd())
    }

    /// The init is done with its end (it has its own copy): close ours and keep what the
    /// foreground needs to start relaying.
    pub fn into_relay_end(self) -> Option<RelayEnd> {
        self.relay_end
    }
}

/// Our end of the console socketpair; the pty master waits in it once the init is done.
pub struct RelayEnd(OwnedFd);

impl RelayEnd {
    /// Receive the pty master and relay it to our own stdio.
    pub fn start_relay(self) -> Result<Relay> {
        Relay::start(console::recv_console_fd(self.0.as_fd())?)
    }
}

#[cfg(test)]
mod tests {
    use super::Stdio;
    use std::path::Path;

    #[test]
    fn runc_rules() {
        let sock = Some(Path::new("/run/c.sock"));
        assert_eq!(Stdio::decide(false, None, true).unwrap(), Stdio::Inherit);
        assert_eq!(Stdio::decide(false, None, false).unwrap(), Stdio::Inherit);
        assert_eq!(Stdio::decide(true, None, false).unwrap(), Stdio::Relay);
        for detach in [true, false] {
            assert_eq!(
                Stdio::decide(true, sock, detach).unwrap(),
                Stdio::ConsoleSocket("/run/c.sock".into())
            );
            let e = Stdio::decide(false, sock, detach).unwrap_err();
            assert_eq!(
                e.to_string(),
                "cannot use console socket if runc will not detach or allocate tty"
            );
        }
        let e = Stdio::decide(true, None, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot allocate tty if runc will detach without setting console socket"
        );
    }

    #[test]
    fn only_a_relay_keeps_an_end_for_us() {
        let c = Stdio::Relay.open().unwrap();
        assert!(c.init_fd().is_some());
        assert!(c.into_relay_end().is_some());
        let c = Stdio::Inherit.open().unwrap();
        assert!(c.init_fd().is_none());
        assert!(c.into_relay_end().is_none());
    }
}
