//! The container init: the runtime re-executes its own (sealed) binary with the socket of
//! an init channel in `_OCIBOX_INIT_FD`. Stage 1 ([`namespaces_stage`]) joins and creates
//! namespaces and forks where the kernel needs it; stage 2 ([`process_setup`]) sets up
//! the container and execs the user's process.

pub mod channel;
mod inherited_fds;
pub mod message;
mod mount_sources;
pub mod namespaces_stage;
pub mod parent;
pub mod process_setup;
pub mod protected_exe;

use channel::Channel;
use message::Message;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// The environment variable carrying the init channel's descriptor.
pub const INIT_FD_ENV: &str = "_OCIBOX_INIT_FD";

/// The argv[0] the init runs under; `ps` shows it, nobody types it.
pub const INIT_ARGV0: &str = "ocibox:[init]";

/// True when this process was spawned by the runtime as a container init.
pub fn is_init_process() -> bool {
    std::env::var_os(INIT_FD_ENV).is_some()
}

/// Run the init; returns an exit code only on failure (success ends in execve).
pub fn main() -> u8 {
    let fd: RawFd = match std::env::var(INIT_FD_ENV).ok().and_then(|v| v.parse().ok()) {
        Some(fd) => fd,
        None => {
            eprintln!("ocibox init: bad {INIT_FD_ENV}");
            return 1;
        }
    };
    std::env::remove_var(INIT_FD_ENV);
    // `run` blocks signals to forward them; the container must not inherit that mask.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // SAFETY: the runtime passed this descriptor to us for exactly this use; we own it now.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut chan = Channel::new(sock);
    let result = match chan.recv() {
        Ok(Some(Message::Bootstrap(b))) => {
            inherited_fds::close_unwanted(&b, fd);
            namespaces_stage::run(&mut chan, *b)
        }
        Ok(_) => Err(anyhow::anyhow!("expected a bootstrap message")),
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            if chan
                .send(&Message::Error {
                    message: message.clone(),
                })
                .is_err()
            {
                eprintln!("ocibox init: {message}");
            }
            1
        }
    }
}
