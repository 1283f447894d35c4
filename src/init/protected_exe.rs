//! CVE-2019-5736: a process in the container must never get a writable handle on the
//! host's ocibox binary, which the init runs until it execs the user's program (a
//! container process can reach it as /proc/<init>/exe).
//!
//! Two protections, cheapest first:
//! 1. **Read-only bind** (default, as runc 1.2): between fork and exec, the init's child
//!    takes a private mount namespace (slave of ours, so nothing propagates back),
//!    bind-mounts the binary onto itself read-only and execs it from there. The init's exe
//!    then lives on a read-only mount: opening it for writing fails with EROFS, however it
//!    is reached. Costs a mount-table copy, no data copy.
//! 2. **Sealed copy** (when the binary has no path to bind, e.g. it is itself a memfd, or
//!    we may not mount, as rootless): a memfd holding a copy of the binary, sealed against
//!    writes. Costs a copy of the binary on every start.

use anyhow::{Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// Set only by the start-latency benchmark, to measure what the protection costs. Never
/// set it in production: the container could then overwrite the host binary.
pub const UNSAFE_NO_PROTECTION_ENV: &str = "_OCIBOX_BENCH_UNSAFE_NO_EXE_PROTECTION";

/// Set to force the sealed copy (benchmarks compare both; tests cover both).
pub const FORCE_SEALED_ENV: &str = "OCIBOX_SEALED_INIT";

pub enum InitExe {
    ReadOnlyBind {
        path: CString,
    },
    /// The descriptor keeps the memfd alive until the init has exec'd it.
    Sealed {
        _fd: OwnedFd,
        path: String,
    },
    Unprotected,
}

impl InitExe {
    pub fn path(&self) -> String {
        match self {
            InitExe::ReadOnlyBind { path } => path.to_string_lossy().into_owned(),
            InitExe::Sealed { path, .. } => path.clone(),
            InitExe::Unprotected => "/proc/self/exe".to_string(),
        }
    }

    /// Arrange the read-only bind in the child before it execs.
    pub fn prepare(&self, cmd: &mut Command) {
        let InitExe::ReadOnlyBind { path } = self else {
            return;
        };
        let path = path.clone();
        let root = c"/";
        // SAFETY: the closure runs in the forked child of a single-threaded runtime, before
        // exec; it makes only raw syscalls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fail = || Err(std::io::Error::last_os_error());
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return fail();
                }
                let none = std::ptr::null();
                if libc::mount(
                    none,
                    root.as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_SLAVE,
                    none.cast(),
                ) != 0
                {
                    return fail();
                }
                if libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    none,
                    libc::MS_BIND,
                    none.cast(),
                ) != 0
                {
                    return fail();
                }
                let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                if libc::mount(none, path.as_ptr(), none, ro, none.cast()) != 0 {
                    return fail();
                }
                Ok(())
            });
        }
    }
}

/// `own_mount_ns`: the init moves into a mount namespace of the container's (new or joined).
/// Without one the container lives in the runtime's mount namespace, as under runc, so the
/// read-only bind (which gives the init a private namespace) is not used.
pub fn init_executable(own_mount_ns: bool) -> Result<InitExe> {
    if std::env::var_os(UNSAFE_NO_PROTECTION_ENV).is_some() {
        return Ok(InitExe::Unprotected);
    }
    // SAFETY: geteuid cannot fail.
    let privileged = unsafe { libc::geteuid() } == 0;
    if privileged && own_mount_ns && std::env::var_os(FORCE_SEALED_ENV).is_none() {
        if let Some(path) = bindable_self_path() {
            return Ok(InitExe::ReadOnlyBind { path });
        }
    }
    let fd = sealed_copy_of_self()?;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(InitExe::Sealed { _fd: fd, path })
}

/// Our binary's path, when it is a regular file that still exists there.
fn bindable_self_path() -> Option<CString> {
    let p: PathBuf = std::fs::read_link("/proc/self/exe").ok()?;
    let s = p.to_str()?;
    if s.ends_with(" (deleted)") || s.starts_with("/memfd:") || !p.is_file() {
        return None;
    }
    CString::new(s).ok()
}

fn sealed_copy_of_self() -> Result<OwnedFd> {
    let mut src = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let name = c"ocibox-init";
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the result is checked.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for the sealed init");
    }
    // SAFETY: memfd_create returned a fresh descriptor that we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(owned);
    std::io::copy(&mut src, &mut dst).context("copy the runtime binary into a memfd")?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd we own, with constant flags.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error()).context("seal the init memfd");
    }
    Ok(OwnedFd::from(dst))
}
