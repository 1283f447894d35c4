//! Bind-mount sources a container's user namespace cannot reach (a directory only the
//! host's root may enter), opened for it by a process that is still the host's root, as
//! runc 1.1's nsexec does (send_mountsources).
//!
//! Before the init enters the user namespace it forks a helper that keeps the host's
//! credentials. Once the init has its new mount namespace, the helper joins that namespace
//! (so the descriptors name mounts the init may bind), opens every bind source O_PATH and
//! passes the descriptors back; the init then binds `/proc/self/fd/N` instead of the path.
//! Only for the real root with a user namespace and a new mount namespace, as runc: an
//! unprivileged runtime could not join the mount namespace anyway.

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::unistd::{fork, ForkResult};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Descriptors of pre-opened bind sources, by index in `spec.mounts`.
pub type SourceFds = HashMap<usize, OwnedFd>;

/// The privileged helper, forked and waiting for the init's mount namespace.
pub struct Helper {
    sock: UnixStream,
    sources: Vec<(usize, PathBuf)>,
    pid: nix::unistd::Pid,
}

impl Helper {
    /// Fork the helper when there are bind sources to open (`sources`: index in
    /// spec.mounts and absolute path). Call while still the host's root, before entering
    /// the user namespace.
    pub fn start(sources: Vec<(usize, PathBuf)>) -> Result<Option<Helper>> {
        if sources.is_empty() {
            return Ok(None);
        }
        let (ours, theirs) =
            UnixStream::pair().context("socketpair for the mount source helper")?;
        let init_pid = std::process::id();
        // SAFETY: the init is single-threaded (no thread was started), so the child may run
        // arbitrary code until it exits.
        match unsafe { fork() }.context("fork the mount source helper")? {
            ForkResult::Child => {
                drop(ours);
                let code = match serve(theirs, init_pid, &sources) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                // SAFETY: _exit ends the helper without running destructors that would
                // touch what it shares with the init (the init channel).
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(theirs);
                Ok(Some(Helper {
                    sock: ours,
                    sources,
                    pid: child,
                }))
            }
        }
    }

    /// The init is in its new mount namespace: let the helper open the sources there.
    /// A source it cannot open fails the container, as in runc ("failed to open mount
    /// source").
    pub fn collect(mut self) -> Result<SourceFds> {
        self.sock
            .write_all(b"g")
            .context("wake the mount source helper")?;
        let mut out = SourceFds::new();
        for (index, path) in &self.sources {
            match recv_one(&self.sock)? {
                Ok(fd) => {
                    out.insert(*index, fd);
                }
                Err(errno) => {
                    bail!(
                        "failed to open mount source {}: {}",
                        path.display(),
                        errno.desc()
                    )
                }
            }
        }
        // The helper exits after its last answer; reap it.
        let _ = nix::sys::wait::waitpid(self.pid, None);
        Ok(out)
    }
}

impl Drop for Helper {
    /// Not collected (the init failed first): the helper sees end-of-file and exits.
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// The helper: wait, join the init's mount namespace, open and send each source.
fn serve(mut sock: UnixStream, init_pid: u32, sources: &[(usize, PathBuf)]) -> Result<()> {
    let mut go = [0u8; 1];
    sock.read_exact(&mut go)
        .context("wait for the init's mount namespace")?;
    let ns = std::fs::File::open(format!("/proc/{init_pid}/ns/mnt"))
        .context("open the init's mount namespace")?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .context("join the init's mount namespace")?;
    for (_, path) in sources {
        let fd = nix::fcntl::open(
            path.as_path(),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        );
        send_one(&sock, fd)?;
    }
    Ok(())
}

/// One answer of two bytes: "F" and the descriptor, or "E" and the errno of the open.
fn send_one(sock: &UnixStream, fd: nix::Result<RawFd>) -> Result<()> {
    let fds: Vec<RawFd> = fd.iter().copied().collect();
    let (tag, cmsgs): ([u8; 2], Vec<ControlMessage>) = match fd {
        Ok(_) => ([b'F', 0], vec![ControlMessage::ScmRights(&fds)]),
        Err(e) => (
            [b'E', u8::try_from(e as i32).unwrap_or(libc::EIO as u8)],
            Vec::new(),
        ),
    };
    let iov = [std::io::IoSlice::new(&tag)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
        .context("send a mount source")?;
    Ok(())
}

fn recv_one(sock: &UnixStream) -> Result<std::result::Result<OwnedFd, nix::errno::Errno>> {
    let mut tag = [0u8; 2];
    let mut iov = [std::io::IoSliceMut::new(&mut tag)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive a mount source")?;
    if msg.bytes == 0 {
        bail!("the mount source helper died");
    }
    let mut got = None;
    for c in msg.cmsgs().context("read control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                got.get_or_insert(owned);
            }
        }
    }
    match (tag, got) {
        ([b'F', _], Some(fd)) => Ok(Ok(fd)),
        ([b'E', errno], _) => Ok(Err(nix::errno::Errno::from_raw(errno as i32))),
        _ => bail!("a malformed answer from the mount source helper"),
    }
}
