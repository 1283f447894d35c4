//! Init stage 1: enter the namespaces in the order the kernel needs, then fork when a
//! PID or time namespace only takes effect for children.
//!
//! Order: join a user namespace by path, or make a new one and let the runtime write its
//! id maps; then join the other namespaces given by path (all opened up front, since the
//! mount namespace hides host paths); then unshare the new ones together; then write time
//! offsets; then fork if needed. The runtime already put this process into its cgroups, so
//! a new cgroup namespace is rooted there.

use super::channel::Channel;
use super::message::{Bootstrap, Message, Mode};
use super::mount_sources;
use crate::linux::namespaces::{self, Kind};
use anyhow::{bail, Context, Result};
use nix::unistd::{fork, ForkResult};

pub fn run(chan: &mut Channel, b: Bootstrap) -> Result<u8> {
    prctl_name(b"ocibox:[1:NS]");
    // The procfs handle every later /proc write goes through, taken while this process is
    // the host's root in the host's namespaces: nothing of the container can stand in yet.
    crate::linux::procfs::init()?;
    let joins = namespaces::open_joins(&b.namespaces)?;
    // Forked while still the host's root, before any namespace is entered.
    let source_helper = mount_sources::Helper::start(bind_sources_to_open(&b))?;
    let creates: Vec<Kind> = b
        .namespaces
        .iter()
        .filter(|r| r.path.is_none())
        .map(|r| r.kind)
        .collect();

    // User namespace first: everything made after it is owned by it.
    if let Some((_, fd)) = joins.iter().find(|(k, _)| *k == Kind::User) {
        namespaces::join(Kind::User, fd)?;
        become_root_in_userns();
    } else if creates.contains(&Kind::User) {
        namespaces::unshare(&[Kind::User])?;
        chan.send(&Message::NeedIdMaps)?;
        match chan.expect("id maps")? {
            Message::IdMapsWritten => {}
            other => bail!("unexpected {other:?} while waiting for id maps"),
        }
        become_root_in_userns();
    }
    // Mount namespace last among joins: after it, /proc paths may mean something else.
    let mut ordered: Vec<_> = joins.iter().filter(|(k, _)| *k != Kind::User).collect();
    ordered.sort_by_key(|(k, _)| *k == Kind::Mount);
    for (kind, fd) in ordered {
        namespaces::join(*kind, fd)?;
    }
    let new: Vec<Kind> = creates.into_iter().filter(|k| *k != Kind::User).collect();
    namespaces::unshare(&new)?;
    let source_fds = match source_helper {
        Some(h) => h.collect()?,
        None => Default::default(),
    };
    if new.contains(&Kind::Time) {
        namespaces::write_time_offsets(&b.time_offsets)?;
    }
    let must_fork = b.namespaces.iter().any(|r| r.kind.needs_fork());
    if !must_fork {
        chan.send(&Message::Pid {
            pid: std::process::id() as i32,
        })?;
        return stage2(chan, b, new.contains(&Kind::Net), source_fds);
    }
    // The child must not speak on the channel before our Pid message is in it: it waits
    // for a byte on this pipe, written once the message is sent.
    let (go_r, go_w) = nix::unistd::pipe().context("pipe for the fork handshake")?;
    // SAFETY: this process is single-threaded (a fresh exec of the init applet that started
    // no thread), so the child may run arbitrary code after fork.
    match unsafe { fork() }.context("fork the container process")? {
        ForkResult::Parent { child } => {
            drop(go_r);
            chan.send(&Message::Pid {
                pid: child.as_raw(),
            })?;
            nix::unistd::write(&go_w, b"g").context("release the container process")?;
            // Stage 1 is done: the child carries on with the channel.
            // SAFETY: _exit ends this process at once without running destructors that
            // could touch state the child shares (the channel socket).
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {
            drop(go_w);
            let mut byte = [0u8; 1];
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&go_r), &mut byte) {
                Ok(1) => {}
                _ => bail!("stage 1 of the init died before releasing the container process"),
            }
            drop(go_r);
            stage2(chan, b, new.contains(&Kind::Net), source_fds)
        }
    }
}

fn stage2(
    chan: &mut Channel,
    b: Bootstrap,
    new_net: bool,
    source_fds: mount_sources::SourceFds,
) -> Result<u8> {
    prctl_name(b"ocibox:[2:INIT]");
    if new_net {
        namespaces::loopback_up()?;
    }
    super::process_setup::run(chan, b, source_fds)
}

/// In a fresh user namespace become its root, when root is mapped (it usually is).
fn become_root_in_userns() {
    let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
    let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
}

/// Name the process so `ps` shows which stage it is.
pub fn prctl_name(name: &[u8]) {
    if let Ok(c) = std::ffi::CString::new(name) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// The bind sources the helper opens: only for a new container of the real root with a
/// user namespace and a new mount namespace (runc's condition). Relative sources are
/// made absolute against the bundle (our cwd) first: the helper resolves them after
/// joining the mount namespace, which also moves its cwd.
fn bind_sources_to_open(b: &Bootstrap) -> Vec<(usize, std::path::PathBuf)> {
    let has_user = b.namespaces.iter().any(|r| r.kind == Kind::User);
    let new_mount = b
        .namespaces
        .iter()
        .any(|r| r.kind == Kind::Mount && r.path.is_none());
    if b.mode != Mode::Create || !has_user || !new_mount || !nix::unistd::geteuid().is_root() {
        return Vec::new();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    crate::linux::rootfs::bind_sources(&b.spec)
        .into_iter()
        .map(|(i, p)| (i, cwd.join(p)))
        .collect()
}
