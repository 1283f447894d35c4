//! Loading a compiled program into the kernel: seccomp(SECCOMP_SET_MODE_FILTER).

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{bail, Result};

use super::Program;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;

/// Installs the filter on the calling thread (every thread with SECCOMP_FILTER_FLAG_TSYNC)
/// with the spec's flags, plus SECCOMP_FILTER_FLAG_NEW_LISTENER when the program uses
/// SCMP_ACT_NOTIFY; then the listener fd is returned. The caller must have set no_new_privs
/// or hold CAP_SYS_ADMIN.
///
/// TSYNC together with a listener needs SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7), which is
/// added then, as libseccomp does.
pub fn install(p: &Program) -> Result<Option<OwnedFd>> {
    let filter: Vec<libc::sock_filter> = p
        .insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let Ok(len) = u16::try_from(filter.len()) else {
        bail!(
            "install seccomp filter: {} instructions is too many",
            filter.len()
        );
    };
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let mut flags = p.flags;
    if p.notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    // SAFETY: `prog` points at `filter`, which lives until after the call; the kernel copies
    // the program and reads nothing else.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::EACCES) => " (needs no_new_privs or CAP_SYS_ADMIN)",
            Some(libc::EINVAL) => " (a filter flag or action this kernel does not support?)",
            _ => "",
        };
        bail!("install seccomp filter with flags {flags:#x}: {err}{hint}");
    }
    if p.notify {
        let fd = i32::try_from(rc).unwrap_or(-1);
        if fd < 0 {
            bail!("install seccomp filter: bad listener fd {rc}");
        }
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 {
        // With TSYNC, a positive result is the thread that could not be synchronized.
        bail!("install seccomp filter: thread {rc} could not be synchronized (TSYNC)");
    }
    Ok(None)
}
