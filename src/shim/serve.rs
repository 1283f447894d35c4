//! The serving daemon: the process `start` launched with the listening socket on fd 3.
//! It is the subreaper of its containers, serves the task API concurrently until
//! Shutdown, and writes its few log lines to the bundle's `log` FIFO.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use super::publisher::Publisher;
use super::reaper::{request_shutdown, Reaper};
use super::start::socket_path;
use super::task_methods;
use super::task_service::{ShimContext, TaskService};
use super::ShimArgs;
use crate::ttrpc::server;

/// The listening socket `start` hands over.
const LISTENER_FD: i32 = 3;
/// Request threads at most. Wait holds none (it answers when the process exits), so a
/// thread is busy only while a request works (a runtime command at most); eight let
/// Kill, State and the like through while a few slow Creates or Execs run. More requests
/// wait their turn.
const WORKERS: usize = 8;

/// Points stderr at the bundle's `log` FIFO (containerd reads it); without one, stays
/// /dev/null.
fn log_to_fifo() {
    // Read-write: the open never blocks and a restarting containerd never makes us EPIPE.
    if let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("log")
    {
        // SAFETY: dup2 onto stderr of an fd we own; no pointers involved.
        unsafe { libc::dup2(f.as_raw_fd(), 2) };
    }
}

/// The socket this shim serves on, until its name is removed (once: after that the name
/// may already be another shim's).
static SOCKET: Mutex<Option<PathBuf>> = Mutex::new(None);

fn unlink_socket() {
    let taken = SOCKET.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(p) = taken {
        let _ = std::fs::remove_file(p);
    }
}

/// Shutdown's callback: the socket's name goes before the reply leaves (the listener and
/// open connections stay until exit), so a shim started for the same id right after
/// Delete — `ctr run --rm X id` twice in a row — binds its own instead of finding this one
/// still live ("shim already exists"); containerd's shims remove theirs at Shutdown too.
fn shutdown_and_unlink() {
    unlink_socket();
    request_shutdown();
}

/// Serves until Shutdown.
pub fn serve(args: &ShimArgs) -> Result<()> {
    log_to_fifo();
    // One malloc arena: a shim's threads allocate little, and an arena per thread would
    // cost more resident memory than everything else the daemon holds.
    // SAFETY: mallopt takes two integers; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("become child subreaper");
    }
    // Before any other thread exists: SIGCHLD and the shutdown signal are blocked in all.
    let reaper = Reaper::install()?;
    let publisher = Publisher::start(std::env::var("TTRPC_ADDRESS").ok(), args.namespace.clone())?;
    let bundle = args.bundle_dir()?;
    *SOCKET.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(socket_path(&args.address, &args.namespace, &args.id));
    let svc = TaskService::new(
        ShimContext {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle: bundle.clone(),
        },
        reaper.clone(),
        publisher.clone(),
        shutdown_and_unlink,
    );
    let activity = publisher.clone();
    let methods =
        server::after_each_request(task_methods::methods(svc), move || activity.activity());
    // SAFETY: fd 3 is the listener `start` handed over; nothing else owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
    // Not inherited by the runtime and containers we start: a listener held by any of them
    // would keep the socket connectable after we die, so it would never look stale.
    crate::linux::fds::set_cloexec(listener.as_fd()).context("set listener cloexec")?;
    server::raise_fd_limit();
    server::serve(methods, listener, server::Limits::with_workers(WORKERS))?;
    // The main thread is the reaper until Shutdown.
    reaper.reap_until_shutdown();
    // Let the Shutdown reply leave before the process goes.
    std::thread::sleep(Duration::from_millis(20));
    unlink_socket();
    std::process::exit(0);
}
