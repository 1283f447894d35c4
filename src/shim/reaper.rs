//! The one reaper of the serving shim: it is the subreaper's only `waitpid` caller.
//!
//! Every exit (container init, exec processes, runtime children) is recorded in one table
//! before anyone is told, so an exit that arrives before its owner knows the pid (the
//! container init exiting before `runc create` returned, an exec'd process that ends at
//! once) is never lost: the owner takes it from the table when it learns the pid.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Called for every reaped pid with its containerd-style exit status.
pub type ExitListener = Box<dyn Fn(i32) + Send + Sync>;

/// Ends [`Reaper::reap_until_shutdown`]: blocked in every thread, so it only ever reaches
/// that `sigwait`.
pub const SHUTDOWN_SIGNAL: Signal = Signal::SIGUSR1;

/// Ends the serving daemon's reaping loop (Shutdown).
pub fn request_shutdown() {
    let _ = nix::sys::signal::kill(Pid::this(), SHUTDOWN_SIGNAL);
}

/// More unclaimed exits than this and the oldest half is forgotten (pids nobody asked for).
const MAX_UNCLAIMED: usize = 4096;

#[derive(Default)]
struct Table {
    exits: HashMap<i32, u32>,
    order: Vec<i32>,
}

/// The exit table and the condition its waiters sleep on.
pub struct Reaper {
    table: Mutex<Table>,
    changed: Condvar,
    listener: OnceLock<ExitListener>,
}

/// containerd's exit status: the exit code, or 128 + the signal that killed the process.
pub fn exit_status(status: WaitStatus) -> Option<(i32, u32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

impl Reaper {
    /// Blocks `signals` in the calling thread (call it before any other thread exists, so
    /// every thread inherits the mask) and makes the reaper.
    fn blocking(signals: &[Signal]) -> Result<(Arc<Reaper>, SigSet)> {
        let mut set = SigSet::empty();
        for s in signals {
            set.add(*s);
        }
        set.thread_block().context("block SIGCHLD for the reaper")?;
        let reaper = Arc::new(Reaper {
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
            listener: OnceLock::new(),
        });
        Ok((reaper, set))
    }

    /// Blocks SIGCHLD (see [`Reaper::blocking`]) and starts a reaping thread.
    pub fn start() -> Result<Arc<Reaper>> {
        let (reaper, set) = Reaper::blocking(&[Signal::SIGCHLD])?;
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || r.run(set))
            .context("spawn the reaper thread")?;
        Ok(reaper)
    }

    /// For the serving daemon, whose main thread has nothing else to do: blocks SIGCHLD
    /// and [`SHUTDOWN_SIGNAL`] (call before any other thread exists); the caller then
    /// reaps on its own thread with [`Reaper::reap_until_shutdown`].
    pub fn install() -> Result<Arc<Reaper>> {
        let (reaper, _) = Reaper::blocking(&[Signal::SIGCHLD, SHUTDOWN_SIGNAL])?;
        Ok(reaper)
    }

    /// Reaps on the calling thread until [`request_shutdown`] is called.
    pub fn reap_until_shutdown(&self) {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        set.add(SHUTDOWN_SIGNAL);
        loop {
            self.reap_all();
            // A SIGCHLD that arrived while reaping stays pending, so nothing is missed.
            if let Ok(SHUTDOWN_SIGNAL) = set.wait() {
                return;
            }
        }
    }

    /// Sets the one listener told about every exit (after it is in the table).
    pub fn set_listener(&self, listener: ExitListener) {
        let _ = self.listener.set(listener);
    }

    fn run(&self, set: SigSet) {
        loop {
            self.reap_all();
            // A SIGCHLD that arrived while reaping stays pending, so nothing is missed.
            let _ = set.wait();
        }
    }

    fn reap_all(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => {
                    if let Some((pid, code)) = exit_status(status) {
                        self.record(pid, code);
                        if let Some(l) = self.listener.get() {
                            l(pid);
                        }
                    }
                }
            }
        }
    }

    fn record(&self, pid: i32, code: u32) {
        let mut t = lock(&self.table);
        if t.exits.len() >= MAX_UNCLAIMED {
            let old: Vec<i32> = t.order.drain(..MAX_UNCLAIMED / 2).collect();
            for p in old {
                t.exits.remove(&p);
            }
        }
        t.exits.insert(pid, code);
        t.order.push(pid);
        self.changed.notify_all();
    }

    /// Takes the recorded exit of `pid`, if it has exited.
    pub fn take(&self, pid: i32) -> Option<u32> {
        let mut t = lock(&self.table);
        let code = t.exits.remove(&pid)?;
        t.order.retain(|p| *p != pid);
        Some(code)
    }

    /// Blocks until `pid` (a child this process spawned) exits; returns its status.
    pub fn wait(&self, pid: i32) -> u32 {
        let mut t = lock(&self.table);
        loop {
            if let Some(code) = t.exits.remove(&pid) {
                t.order.retain(|p| *p != pid);
                return code;
            }
            t = self.changed.wait(t).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Spawns `cmd` (fork+exec) and returns the child; its exit goes to the table, so wait
    /// for it with [`Reaper::wait`], never with `Child::wait`.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        cmd.spawn()
            .with_context(|| format!("spawn {:?}", cmd.get_program()))
    }
}

/// Locks a mutex, also when a panicking thread poisoned it (the data stays consistent:
/// every critical section here is a few assignments).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_exit_is_128_plus_signal() {
        let st = WaitStatus::Signaled(Pid::from_raw(5), Signal::SIGKILL, false);
        assert_eq!(exit_status(st), Some((5, 137)));
        let st = WaitStatus::Exited(Pid::from_raw(6), 3);
        assert_eq!(exit_status(st), Some((6, 3)));
    }
}
