//! `run`: create + start, and unless detached, stay in the foreground: forward signals to
//! the container, relay its terminal, reap it, delete it, return its exit status.

use super::create::{create, CreateOptions};
use super::start::start;
use crate::linux::console;
use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    /// Keep the container's state after it exits (`--keep`).
    pub keep: bool,
}

/// Signals the foreground runtime forwards to the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
    Signal::SIGCONT,
    Signal::SIGPIPE,
    Signal::SIGALRM,
];

/// Returns the exit code for the runtime: the container's (128+signal when killed).
pub fn run(mut opts: RunOptions) -> Result<i32> {
    let root: PathBuf = opts.create.root.clone();
    let id = opts.create.id.clone();
    if opts.detach {
        create(opts.create)?;
        start(&root, &id)?;
        return Ok(0);
    }
    // Children of the init are re-parented to us when it exits; we reap the container.
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .context("block signals")?;
    let sfd = SignalFd::new(&mask).context("signalfd")?;

    let terminal = terminal_requested(&opts.create)?;
    let mut console_ours: Option<OwnedFd> = None;
    if terminal && opts.create.console_socket.is_none() {
        let (a, b) = std::os::unix::net::UnixStream::pair().context("console socketpair")?;
        opts.create.console_fd = Some(OwnedFd::from(b));
        console_ours = Some(OwnedFd::from(a));
    }
    let st = create(opts.create)?;
    let mut relay = None;
    if let Some(sock) = console_ours {
        let master = console::recv_console_fd(sock.as_fd())?;
        relay = Some(super::tty_relay::Relay::start(master)?);
    }
    if let Err(e) = start(&root, &id) {
        let _ = super::delete::delete(&root, &id, true);
        return Err(e);
    }
    let code = loop {
        let Some(info) = sfd.read_signal().context("read signalfd")? else {
            continue;
        };
        let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGCHLD);
        match sig {
            Signal::SIGCHLD => {
                if let Some(code) = reap(st.pid) {
                    break code;
                }
            }
            Signal::SIGWINCH => {
                if let Some(r) = &relay {
                    r.resize_from_stdin();
                }
            }
            other => {
                let _ = nix::sys::signal::kill(Pid::from_raw(st.pid), other);
            }
        }
    };
    if let Some(r) = relay {
        r.finish();
    }
    if !opts.keep {
        super::delete::delete(&root, &id, true)?;
    }
    Ok(code)
}

fn terminal_requested(opts: &CreateOptions) -> Result<bool> {
    let bundle = std::fs::canonicalize(&opts.bundle)
        .with_context(|| format!("bundle {}", opts.bundle.display()))?;
    let cfg = crate::spec::load(&bundle)?;
    Ok(cfg.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true))
}

/// Reap every exited child; the container's exit code when it is among them.
fn reap(container: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == container => found = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == container => {
                found = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}
