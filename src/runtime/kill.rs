//! `kill`: signal the container's init (or, with `--all`, every process in its cgroup).

use super::id::ContainerId;
use super::state::State;
use super::status::{process_start_time, Status};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Parse a signal as runc 1.1 does: any number is taken as it is (0 probes, an
/// out-of-range number fails at kill(2) with "invalid argument"), or a name with or
/// without the SIG prefix.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

/// `runc kill`: the init, or with `all` every process of the cgroup. runc 1.1 signals a
/// stopped container's cgroup with `--all` only while the cgroup exists, and warns per
/// process that cannot be signalled (`kill --all ID 99` warns "invalid argument", exit 0).
pub fn kill(root: &Path, id: &ContainerId, sig: i32, all: bool) -> Result<()> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    if all {
        return signal_all_raw(&st, sig, status, true);
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    signal_init_raw(&st, sig).context("unable to signal init")
}

/// Signal the init, after checking it is still the process we started.
pub fn signal_init(st: &State, sig: Signal) -> Result<()> {
    signal_init_raw(st, sig as i32)
        .with_context(|| format!("signal {sig} to container init {}", st.pid))
}

fn signal_init_raw(st: &State, sig: i32) -> Result<()> {
    if !st.is_alive() {
        bail!("container not running");
    }
    raw_kill(st.pid, sig)
        .map_err(|e| anyhow::anyhow!("{}", crate::runtime_log::errno_name_text(e as i32)))
}

fn raw_kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes plain integers; a bad signal number is an EINVAL, not UB.
    let r = unsafe { libc::kill(pid, sig) };
    nix::errno::Errno::result(r).map(drop)
}

/// Every process of the container's cgroup: freeze, signal, thaw, so no child escapes.
pub fn signal_all(st: &State, sig: Signal, status: Status) -> Result<()> {
    signal_all_raw(st, sig as i32, status, false)
}

fn signal_all_raw(st: &State, sig: i32, status: Status, warn: bool) -> Result<()> {
    let Some(cg) = &st.cgroup else {
        if status == Status::Stopped {
            return Ok(());
        }
        return signal_init_raw(st, sig);
    };
    let freeze = sig == Signal::SIGKILL as i32 && status != Status::Paused;
    if freeze {
        let _ = cg.freeze();
    }
    let pids = cg.pids().unwrap_or_default();
    for p in &pids {
        if let Err(e) = raw_kill(*p, sig) {
            if warn {
                crate::runtime_log::warn(&crate::runtime_log::errno_name_text(e as i32));
            }
        }
    }
    if freeze {
        let _ = cg.thaw();
    }
    if pids.is_empty() && st.is_alive() {
        signal_init_raw(st, sig)?;
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
