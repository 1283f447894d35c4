//! The runtime's side of the init: spawn the sealed init, put it in its cgroups, send the
//! bootstrap and answer the init's requests until it hangs up.

use super::channel::Channel;
use super::message::{Bootstrap, Message};
use super::{protected_exe, INIT_ARGV0, INIT_FD_ENV};
use crate::linux::cgroups::Manager;
use crate::linux::namespaces;
use crate::oci::state::OciState;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIdMapping;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// What the runtime does at each step the init asks for.
pub struct Callbacks<'a> {
    /// The container process is known (host pid); remember it for cleanup.
    pub on_pid: &'a mut dyn FnMut(i32) -> Result<()>,
    /// Mounts are done: run prestart + createRuntime hooks; returns the state for the
    /// container's own hooks.
    pub run_hooks: &'a mut dyn FnMut(i32) -> Result<OciState>,
    /// Init is ready to drop privileges: apply cgroup resources.
    pub on_ready: &'a mut dyn FnMut(i32) -> Result<()>,
    /// The seccomp notify listener of the container process, for the agent.
    pub on_seccomp_fd: &'a mut dyn FnMut(i32, OwnedFd) -> Result<()>,
}

pub struct IdMaps<'a> {
    pub uids: &'a [LinuxIdMapping],
    pub gids: &'a [LinuxIdMapping],
    pub deny_setgroups: bool,
}

/// Start an init for `b` and drive it until it hangs up. Returns the container pid.
/// Descriptors named in the bootstrap (console socket, exec fifo) must be open here and
/// are passed to the init at the same numbers.
pub fn run_init(
    mut b: Bootstrap,
    cgroup: Option<&Manager>,
    id_maps: Option<IdMaps>,
    cb: Callbacks,
) -> Result<i32> {
    if cgroup.is_some() {
        // The init's cgroup join is the slowest step of a create when the kernel's
        // migration lock is cold; start that wait now, beside the init's exec.
        crate::linux::cgroups::warmup::start();
    }
    let (ours, theirs) = UnixStream::pair().context("socketpair for the init channel")?;
    // Pass descriptors to the init without CLOEXEC; they are closed here after spawn.
    let child_sock = dup_inheritable(theirs.as_raw_fd())?;
    let mut passed = vec![child_sock];
    if let Some(fd) = b.console_fd {
        let d = dup_inheritable(fd)?;
        b.console_fd = Some(d.as_raw_fd());
        passed.push(d);
    }
    if let Some(fd) = b.fifo_fd {
        let d = dup_inheritable(fd)?;
        b.fifo_fd = Some(d.as_raw_fd());
        passed.push(d);
    }
    drop(theirs);
    let own_mount_ns = b
        .namespaces
        .iter()
        .any(|r| r.kind == namespaces::Kind::Mount);
    let exe = protected_exe::init_executable(own_mount_ns)?;
    let mut cmd = Command::new(exe.path());
    cmd.arg0(INIT_ARGV0)
        .env_clear()
        .env(INIT_FD_ENV, passed[0].as_raw_fd().to_string());
    exe.prepare(&mut cmd);
    let mut stage1 = cmd.spawn().context("start the container init")?;
    drop(passed);
    drop(exe);
    let stage1_pid = stage1.id() as i32;
    let mut chan = Channel::new(ours);
    let result = drive(&mut chan, stage1_pid, b, cgroup, id_maps, cb);
    match result {
        // Without a fork, stage 1 is the container process itself: it must keep running
        // (and is reaped by whoever waits for the container).
        Ok(pid) if pid == stage1_pid => {}
        Ok(_) => {
            let _ = stage1.wait();
        }
        Err(_) => {
            let _ = stage1.kill();
            let _ = stage1.wait();
        }
    }
    result
}

fn drive(
    chan: &mut Channel,
    stage1_pid: i32,
    b: Bootstrap,
    cgroup: Option<&Manager>,
    id_maps: Option<IdMaps>,
    cb: Callbacks,
) -> Result<i32> {
    // The cgroup is joined before the init can fork anything.
    if let Some(cg) = cgroup {
        cg.apply(stage1_pid)
            .context("join the container's cgroups")?;
    }
    let b_mode_create = b.mode == super::message::Mode::Create;
    // `--debug` lines at the init's steps, in runc's words (runc's tests and users grep
    // for "nsexec container setup", "child process in init()" and "init: closing the
    // pipe to signal completion"); ocibox's init stages stand where runc's nsexec's do.
    let debug = crate::runtime_log::debug;
    // runc 1.1 says "error during container init: …" for what fails in a new container's
    // init (and its prestart/createRuntime hooks), but not for a missing executable
    // (`exec: "/x": …`) nor anything in `exec`.
    let in_init = |e: anyhow::Error| -> anyhow::Error {
        if b_mode_create && !format!("{e}").starts_with("exec: ") {
            e.context("error during container init")
        } else {
            e
        }
    };
    debug(&format!("nsexec[{stage1_pid}]: => nsexec container setup"));
    chan.send(&Message::Bootstrap(Box::new(b)))?;
    let mut pid = None;
    let mut ready = false;
    loop {
        let Some(msg) = chan.recv()? else { break };
        match msg {
            Message::NeedIdMaps => {
                let m = id_maps
                    .as_ref()
                    .context("the init made a user namespace but no id mappings are set")?;
                debug(&format!(
                    "nsexec-1[{stage1_pid}]: request stage-0 to map user namespace"
                ));
                namespaces::write_id_maps(stage1_pid, m.uids, m.gids, m.deny_setgroups)?;
                chan.send(&Message::IdMapsWritten)?;
            }
            Message::Pid { pid: p } => {
                debug(&format!(
                    "nsexec-0[{stage1_pid}]: forward stage-1 ({stage1_pid}) and stage-2 ({p}) pids to runc"
                ));
                debug(&format!("nsexec-2[{p}]: <= nsexec container setup"));
                debug("child process in init()");
                (cb.on_pid)(p)?;
                pid = Some(p);
            }
            Message::RunHooks => {
                debug("init: sending hooks request");
                let p = pid.context("hooks requested before the container pid is known")?;
                let state = (cb.run_hooks)(p).map_err(in_init)?;
                chan.send(&Message::HooksDone { state })?;
            }
            Message::Ready => {
                let p = pid.context("ready before the container pid is known")?;
                (cb.on_ready)(p)?;
                chan.send(&Message::Continue)?;
                ready = true;
            }
            Message::Error { message } => return Err(in_init(anyhow::anyhow!("{message}"))),
            Message::Warning { message } => crate::runtime_log::warn(&message),
            Message::SeccompFd => {
                let fd = chan.recv_fd()?;
                let p = pid.context("seccomp fd before the container pid is known")?;
                (cb.on_seccomp_fd)(p, fd)?;
            }
            other => bail!("unexpected message from init: {other:?}"),
        }
    }
    match (pid, ready) {
        (Some(p), true) => {
            debug("init: closing the pipe to signal completion");
            Ok(p)
        }
        _ => bail!("container init exited before it was ready"),
    }
}

fn dup_inheritable(fd: RawFd) -> Result<OwnedFd> {
    let d = nix::unistd::dup(fd).context("dup a descriptor for the init")?;
    // SAFETY: dup returned a fresh descriptor (without CLOEXEC) that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}
