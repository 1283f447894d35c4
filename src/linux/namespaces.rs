//! Namespaces: which to create, which to join by path, in the order the kernel needs.

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One namespace request: make a new one (`path` None) or join the one at `path`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub path: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Kind {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl Kind {
    pub fn from_spec(t: LinuxNamespaceType) -> Kind {
        match t {
            LinuxNamespaceType::User => Kind::User,
            LinuxNamespaceType::Mount => Kind::Mount,
            LinuxNamespaceType::Pid => Kind::Pid,
            LinuxNamespaceType::Network => Kind::Net,
            LinuxNamespaceType::Ipc => Kind::Ipc,
            LinuxNamespaceType::Uts => Kind::Uts,
            LinuxNamespaceType::Cgroup => Kind::Cgroup,
            LinuxNamespaceType::Time => Kind::Time,
        }
    }

    /// The name under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mount => "mnt",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }

    pub fn flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Mount => CloneFlags::CLONE_NEWNS,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // CLONE_NEWTIME is not in nix's CloneFlags.
            Kind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// Joining or creating these only takes effect for children: the init must fork.
    pub fn needs_fork(self) -> bool {
        matches!(self, Kind::Pid | Kind::Time)
    }
}

/// The requests of a spec's `linux.namespaces`.
pub fn requests_from_spec(spec: &oci_spec::runtime::Spec) -> Vec<Request> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|ns| Request {
            kind: Kind::from_spec(ns.typ()),
            path: ns.path().clone().filter(|p| !p.as_os_str().is_empty()),
        })
        .collect()
}

/// The namespaces a process joins to enter a running container (runc exec): every
/// namespace the container has, by its /proc path. The user namespace is only joined when
/// the container made one.
pub fn requests_to_join(pid: i32, spec_requests: &[Request]) -> Vec<Request> {
    spec_requests
        .iter()
        .map(|r| Request {
            kind: r.kind,
            path: Some(PathBuf::from(format!(
                "/proc/{pid}/ns/{}",
                r.kind.proc_name()
            ))),
        })
        .collect()
}

/// Open every namespace path up front: once the mount namespace changes, host paths vanish.
pub fn open_joins(reqs: &[Request]) -> Result<Vec<(Kind, OwnedFd)>> {
    let mut out = Vec::new();
    for r in reqs {
        if let Some(p) = &r.path {
            let fd = nix::fcntl::open(
                p.as_path(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("open {} namespace {}", r.kind.proc_name(), p.display()))?;
            // SAFETY: open returned a fresh descriptor that nothing else owns.
            out.push((r.kind, unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
            }));
        }
    }
    Ok(out)
}

/// setns into one namespace; the error names it.
pub fn join(kind: Kind, fd: &OwnedFd) -> Result<()> {
    nix::sched::setns(fd, kind.flag()).with_context(|| {
        format!(
            "join {} namespace (fd {})",
            kind.proc_name(),
            fd.as_raw_fd()
        )
    })
}

/// unshare a set of new namespaces at once.
pub fn unshare(kinds: &[Kind]) -> Result<()> {
    if kinds.is_empty() {
        return Ok(());
    }
    let flags = kinds.iter().fold(CloneFlags::empty(), |f, k| f | k.flag());
    nix::sched::unshare(flags).with_context(|| {
        let names: Vec<_> = kinds.iter().map(|k| k.proc_name()).collect();
        format!("unshare {} namespaces", names.join(","))
    })
}

/// Write uid_map / gid_map of `pid` (the runtime does this for the init's new user
/// namespace). `deny_setgroups` writes "deny" to setgroups first, as an unprivileged
/// (rootless) runtime must.
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    deny_setgroups: bool,
) -> Result<()> {
    let fmt = |m: &[LinuxIdMapping]| -> String {
        m.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    if deny_setgroups {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").with_context(|| format!("write deny to {p}"))?;
    }
    if !uids.is_empty() {
        let p = format!("/proc/{pid}/uid_map");
        std::fs::write(&p, fmt(uids)).with_context(|| format!("write uid mappings to {p}"))?;
    }
    if !gids.is_empty() {
        let p = format!("/proc/{pid}/gid_map");
        std::fs::write(&p, fmt(gids)).with_context(|| format!("write gid mappings to {p}"))?;
    }
    Ok(())
}

/// Write the time namespace offsets; only possible before any process lives in it.
pub fn write_time_offsets(offsets: &[crate::oci::spec::TimeOffset]) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let text: String = offsets
        .iter()
        .map(|o| format!("{} {} {}\n", o.clock, o.secs, o.nanosecs))
        .collect();
    // Through the verified procfs handle: a mount namespace joined by path has made /proc
    // the container's by now.
    crate::linux::procfs::get()?
        .write_self("timens_offsets", text.as_bytes())
        .context("write /proc/self/timens_offsets")
}

/// Bring the loopback interface of a new network namespace up, as runc does.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket() with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket for loopback setup");
    }
    // SAFETY: fd is a fresh socket we own.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads and writes only `req`, a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("get flags of lo");
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads only `req`, a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("set lo up");
    }
    Ok(())
}

/// Check that a namespace path given in the spec is one of the right kind.
pub fn check_path(kind: Kind, path: &Path) -> Result<()> {
    if !path.exists() {
        bail!(
            "{} namespace path {} does not exist",
            kind.proc_name(),
            path.display()
        );
    }
    Ok(())
}
