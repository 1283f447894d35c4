//! `kill`: signal the container's init (or, with `--all`, every process in its cgroup).

use super::id::ContainerId;
use super::state::State;
use super::status::{process_start_time, Status};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// Parse a signal as runc does: a number, or a name with or without the SIG prefix.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

pub fn kill(root: &Path, id: &ContainerId, sig: Signal, all: bool) -> Result<()> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    if all {
        return signal_all(&st, sig, status);
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    signal_init(&st, sig)
}

/// Signal the init, after checking it is still the process we started.
pub fn signal_init(st: &State, sig: Signal) -> Result<()> {
    if !st.is_alive() {
        bail!("container not running");
    }
    nix::sys::signal::kill(Pid::from_raw(st.pid), sig)
        .with_context(|| format!("signal {sig} to container init {}", st.pid))
}

/// Every process of the container's cgroup: freeze, signal, thaw, so no child escapes.
pub fn signal_all(st: &State, sig: Signal, status: Status) -> Result<()> {
    let Some(cg) = &st.cgroup else {
        return signal_init(st, sig);
    };
    let freeze = sig == Signal::SIGKILL && status != Status::Paused;
    if freeze {
        let _ = cg.freeze();
    }
    let pids = cg.pids().unwrap_or_default();
    for p in &pids {
        let _ = nix::sys::signal::kill(Pid::from_raw(*p), sig);
    }
    if freeze {
        let _ = cg.thaw();
    }
    if pids.is_empty() && st.is_alive() {
        signal_init(st, sig)?;
    }
    Ok(())
}

/// Wait until `pid` is gone (or a zombie), up to `timeout`. True when it is gone.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if process_start_time(pid).is_none() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
