//! The serving daemon: the process `start` launched with the listening socket on fd 3.
//! It is the subreaper of its containers, serves the task API concurrently until
//! Shutdown, and writes its few log lines to the bundle's `log` FIFO.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use anyhow::{Context, Result};

use containerd_shim_protos::create_task;

use super::publisher::Publisher;
use super::reaper::{request_shutdown, Reaper};
use super::start::socket_path;
use super::task_service::{ShimContext, TaskService};
use super::ShimArgs;
use crate::ttrpc::server::{self, Workers};

/// The listening socket `start` hands over.
const LISTENER_FD: i32 = 3;
/// The ttrpc server's own socket in the bundle; clients reach it through the method relay,
/// which answers unknown methods.
const PRIVATE_SOCKET: &str = "ttrpc.sock";
/// Every request always finds a worker (one idle at least: a worker busy in Wait, which
/// holds it for a process's whole life, is not counted), while no more than three idle
/// threads are kept around.
const WORKERS: Workers = Workers {
    min: 1,
    default: 2,
    max: 3,
};

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
    let svc = TaskService::new(
        ShimContext {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle: bundle.clone(),
        },
        reaper.clone(),
        publisher.clone(),
        request_shutdown,
    );
    let activity = publisher.clone();
    let methods = server::after_each_request(create_task(svc), move || activity.activity());
    // SAFETY: fd 3 is the listener `start` handed over; nothing else owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
    let serving = server::serve(methods, listener, &bundle, PRIVATE_SOCKET, WORKERS)?;
    // The main thread is the reaper until Shutdown.
    reaper.reap_until_shutdown();
    // Let the Shutdown reply leave before the process goes.
    std::thread::sleep(Duration::from_millis(20));
    let _ = std::fs::remove_file(&serving.private_path);
    drop(serving.server);
    let _ = std::fs::remove_file(socket_path(&args.address, &args.namespace, &args.id));
    std::process::exit(0);
}
