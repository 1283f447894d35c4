//! `process.rlimits`: resource limits set with prlimit(2) on the init itself, so the container
//! process inherits them across execve (runc `setupRlimits`).

use anyhow::{Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

/// The kernel's RLIMIT_* number for a spec rlimit type.
pub fn resource_number(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match typ {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Set every rlimit in `r` on the calling process, in order. The error names the type, e.g.
/// "error setting rlimit type RLIMIT_NOFILE: Operation not permitted (os error 1)".
/// Raising a hard limit needs CAP_SYS_RESOURCE; soft above hard is EINVAL.
pub fn apply_rlimits(r: &[PosixRlimit]) -> Result<()> {
    for limit in r {
        let new = libc::rlimit64 {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: prlimit64 on pid 0 (ourselves) reads `new`, which outlives the call; the old
        // value pointer is null (not wanted).
        let rc =
            unsafe { libc::prlimit64(0, resource_number(limit.typ()), &new, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(Errno::last())
                .with_context(|| format!("error setting rlimit type {}", limit.typ()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::test_child::with_child;
    use oci_spec::runtime::PosixRlimitBuilder;

    fn rl(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    /// The (soft, hard) columns of one row of /proc/<pid>/limits.
    fn limits_row(pid: nix::unistd::Pid, title: &str) -> (String, String) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = text.lines().find(|l| l.starts_with(title)).unwrap();
        let cols: Vec<&str> = line[title.len()..].split_whitespace().collect();
        (cols[0].to_string(), cols[1].to_string())
    }

    #[test]
    fn limits_are_set_on_the_process() {
        let limits = vec![
            rl(PosixRlimitType::RlimitNofile, 512, 1024),
            rl(PosixRlimitType::RlimitCore, 0, u64::MAX),
            rl(PosixRlimitType::RlimitNproc, 333, 444),
            rl(PosixRlimitType::RlimitRttime, 5000, 6000),
        ];
        with_child(
            move || apply_rlimits(&limits),
            |pid, res| {
                res.unwrap();
                assert_eq!(
                    limits_row(pid, "Max open files"),
                    ("512".into(), "1024".into())
                );
                assert_eq!(
                    limits_row(pid, "Max core file size"),
                    ("0".into(), "unlimited".into())
                );
                assert_eq!(
                    limits_row(pid, "Max processes"),
                    ("333".into(), "444".into())
                );
                assert_eq!(
                    limits_row(pid, "Max realtime timeout"),
                    ("5000".into(), "6000".into())
                );
            },
        );
    }

    #[test]
    fn error_names_the_type() {
        let limits = vec![rl(PosixRlimitType::RlimitNofile, 2048, 1024)];
        with_child(
            move || apply_rlimits(&limits),
            |_, res| {
                let e = res.unwrap_err();
                assert!(
                    e.starts_with("error setting rlimit type RLIMIT_NOFILE: "),
                    "{e}"
                );
            },
        );
    }
}
