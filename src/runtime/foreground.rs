//! Staying in the foreground with a container process (`run`, `exec` without `--detach`):
//! signals forwarded, the terminal relayed, the process reaped, its status returned.

use super::tty_relay::Relay;
use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

/// Set up before the container process exists: become a subreaper (the init's stage 1
/// exits and its child is re-parented to us) and queue the signals we forward.
pub struct Foreground {
    sfd: SignalFd,
}

impl Foreground {
    pub fn prepare() -> Result<Foreground> {
        nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
        let mut mask = SigSet::empty();
        for s in FORWARDED {
            mask.add(*s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .context("block signals")?;
        let sfd = SignalFd::new(&mask).context("signalfd")?;
        Ok(Foreground { sfd })
    }

    /// Forward signals to `pid` until it exits; its exit code (128+signal when killed).
    pub fn wait(self, pid: i32, relay: Option<Relay>) -> Result<i32> {
        // It may have exited before we looked.
        let mut code = reap(pid);
        while code.is_none() {
            let Some(info) = self.sfd.read_signal().context("read signalfd")? else {
                continue;
            };
            let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGCHLD);
            match sig {
                Signal::SIGCHLD => code = reap(pid),
                Signal::SIGWINCH => {
                    if let Some(r) = &relay {
                        r.resize_from_host_terminal();
                    }
                }
                other => {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), other);
                }
            }
        }
        if let Some(r) = relay {
            r.finish();
        }
        Ok(code.unwrap_or(255))
    }
}

/// Reap every exited child; the exit code of `pid` when it is among them.
fn reap(pid: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => found = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                found = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}
