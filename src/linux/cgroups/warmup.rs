//! Warming the kernel's cgroup migration lock before a container joins its cgroups.
//!
//! Every write to a `cgroup.procs` file (v1 and v2 alike) takes the global
//! `cgroup_threadgroup_rwsem` for writing. That lock is a per-cpu rwsem guarded by an
//! `rcu_sync`: when nobody wrote for a while, the first writer waits one full RCU grace
//! period (8–16 ms on this kind of VM, measured with a no-op self-migration) before it gets
//! the lock; writers that come while a grace period is running, or within one grace period
//! after the last writer left, do not wait again. runc, crun and ocibox's runtime all pay that
//! wait when they move a new init into its cgroups, and it is the largest single step of
//! `ctr run --rm busybox true` here (see the README's figures).
//!
//! [`start`] begins that wait early, on a short-lived thread, so it overlaps with work the
//! caller does anyway (the daemon starting a shim, the shim starting the runtime, the runtime
//! starting its init): by the time the real write comes, the lock is warm. The warm-up moves
//! nothing: the thread writes its own thread id into the per-thread file (`tasks` on v1,
//! `cgroup.threads` on v2) of the cgroup it is already in. The kernel takes the lock for any
//! migration of a task that exists (a pid that does not exist is looked up first and refused
//! without the lock on 6.x kernels, so it warms nothing), and moving one thread to where it
//! is, is a no-op; only that thread is named, so even a process moved by someone else at the
//! same moment is never moved back. Kernels with `favordynmods` on the hierarchy never wait.
//!
//! The caller must be root (or own the hierarchy's root); otherwise the open fails and nothing
//! happens. Errors are ignored: the warm-up is an optimisation, never a step that can fail a
//! container.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::Manager;

/// One warm-up in flight per process is enough: a second one would only queue behind it.
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);

/// Start warming the migration lock on a detached thread; returns at once.
pub fn start() {
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warmup".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            if let Some(f) = own_thread_file() {
                let _ = write_own_tid(&f);
            }
            IN_FLIGHT.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The per-thread membership file of the cgroup the calling thread is in: in the unified
/// hierarchy where there is one (v2, hybrid), else in the first v1 hierarchy mounted here.
fn own_thread_file() -> Option<PathBuf> {
    let dirs = Manager::for_this_thread().ok()?.paths();
    match dirs.get("") {
        Some(unified) => Some(unified.join(V2_THREADS)),
        None => dirs.values().next().map(|d| d.join(V1_TASKS)),
    }
}

const V2_THREADS: &str = "cgroup.threads";
const V1_TASKS: &str = "tasks";

/// Moves the calling thread into `file`'s cgroup (where it already is).
fn write_own_tid(file: &Path) -> std::io::Result<()> {
    let tid = nix::unistd::gettid().as_raw();
    let mut f = OpenOptions::new().write(true).open(file)?;
    f.write_all(tid.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_cgroups() -> (String, String) {
        (
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            std::fs::read_to_string("/proc/thread-self/cgroup").unwrap(),
        )
    }

    /// The warm-up write is accepted by the kernel (so it took the migration lock) and
    /// moves nothing: this thread and process stay in every cgroup they were in.
    #[test]
    fn warmup_write_is_accepted_and_moves_nothing() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let before = own_cgroups();
        let f = own_thread_file().expect("a mounted cgroup hierarchy");
        write_own_tid(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(own_cgroups(), before);
    }

    /// `start` runs the write on its own thread and clears the in-flight mark when done, so
    /// the next task create warms again.
    #[test]
    fn start_returns_at_once_and_clears_in_flight() {
        start();
        for _ in 0..500 {
            if !IN_FLIGHT.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the warm-up thread did not finish within 5 s");
    }
}
