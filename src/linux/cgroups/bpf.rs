//! The bpf(2) calls that put a device program on a cgroup2 directory: load, query the programs
//! already attached, attach the new one (BPF_F_ALLOW_MULTI), then detach the old ones so the
//! cgroup is never without a filter while it is replaced.

use super::device_rules::Insn;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The part of `union bpf_attr` each command uses, zero padded to a size every kernel accepts.
#[repr(C, align(8))]
struct Attr {
    words: [u32; 32],
}

impl Attr {
    fn new() -> Attr {
        Attr { words: [0; 32] }
    }
    fn set_u64(&mut self, word: usize, v: u64) {
        self.words[word] = v as u32;
        self.words[word + 1] = (v >> 32) as u32;
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: attr is a valid, writable, properly aligned bpf_attr-sized buffer whose pointers
    // (set by the callers) reference memory alive for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this new fd to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load a device program; on a verifier error the verifier's log is in the message.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    for log_level in [0u32, 1] {
        let mut a = Attr::new();
        a.words[0] = BPF_PROG_TYPE_CGROUP_DEVICE;
        a.words[1] = insns.len() as u32;
        a.set_u64(2, insns.as_ptr() as u64);
        a.set_u64(4, license.as_ptr() as u64);
        if log_level > 0 {
            a.words[6] = log_level;
            a.words[7] = log.len() as u32;
            a.set_u64(8, log.as_mut_ptr() as u64);
        }
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => return Ok(owned(fd)),
            Err(e) if log_level == 0 && e.raw_os_error() == Some(libc::EACCES) => continue,
            Err(e) if log_level == 0 && e.raw_os_error() == Some(libc::EINVAL) => continue,
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                return Err(e).with_context(|| {
                    format!(
                        "load eBPF device program ({} instructions): {}",
                        insns.len(),
                        text.trim()
                    )
                });
            }
        }
    }
    bail!("load eBPF device program: rejected")
}

/// Ids of the device programs attached to a cgroup.
fn query_device_programs(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr::new();
    a.words[0] = cgroup.as_raw_fd() as u32;
    a.words[1] = BPF_CGROUP_DEVICE;
    a.set_u64(4, ids.as_mut_ptr() as u64);
    a.words[6] = ids.len() as u32;
    bpf(BPF_PROG_QUERY, &mut a).context("query eBPF device programs")?;
    ids.truncate(a.words[6] as usize);
    Ok(ids)
}

/// How many device programs are attached to the cgroup2 directory `dir`.
pub fn attached_device_programs(dir: &Path) -> Result<usize> {
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .with_context(|| format!("open cgroup {}", dir.display()))?
        .into();
    Ok(query_device_programs(&cgroup)?.len())
}

/// Attach `prog` to the cgroup2 directory `dir`, replacing any device programs already there.
pub fn attach_device_program(dir: &Path, prog: &OwnedFd) -> Result<()> {
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .with_context(|| format!("open cgroup {}", dir.display()))?
        .into();
    let old = query_device_programs(&cgroup).unwrap_or_default();
    let mut a = Attr::new();
    a.words[0] = cgroup.as_raw_fd() as u32;
    a.words[1] = prog.as_raw_fd() as u32;
    a.words[2] = BPF_CGROUP_DEVICE;
    a.words[3] = BPF_F_ALLOW_MULTI;
    bpf(BPF_PROG_ATTACH, &mut a)
        .with_context(|| format!("attach eBPF device program to {}", dir.display()))?;
    for id in old {
        let mut g = Attr::new();
        g.words[0] = id;
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut g) else {
            continue; // already gone
        };
        let old_prog = owned(fd);
        let mut d = Attr::new();
        d.words[0] = cgroup.as_raw_fd() as u32;
        d.words[1] = old_prog.as_raw_fd() as u32;
        d.words[2] = BPF_CGROUP_DEVICE;
        bpf(BPF_PROG_DETACH, &mut d).with_context(|| {
            format!(
                "detach old eBPF device program {} from {}",
                id,
                dir.display()
            )
        })?;
    }
    Ok(())
}
