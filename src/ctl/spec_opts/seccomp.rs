//! `--seccomp` and `--seccomp-profile`: containerd's default seccomp profile as ctr 1.6
//! builds it (`contrib/seccomp`, `WithDefaultProfile`) and a profile read from a file
//! (`WithProfile`).
//!
//! The default profile is data plus three rules: default action ERRNO on the host's ABIs
//! (x86-64, x86, x32), the always-allowed syscalls ([`ALLOWED`]), five `personality`
//! values, `ptrace` on kernels from 4.8, the architecture's own calls, then one group per
//! capability the spec grants (CAP_SYS_ADMIN's group lets a container mount, unshare…);
//! without CAP_SYS_ADMIN, `clone` only without namespace flags and `clone3` answered
//! ENOSYS so that libc falls back to `clone`. ctr emits the capability groups in Go map
//! order (random); they come here in the order below.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::linux::go_errno::errno_text;

/// The syscalls containerd 1.6.20's default profile always allows (as ctr 1.6.20 writes
/// them, in its order).
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// The syscalls a capability unlocks, in containerd's groups.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `personality(2)` personas the profile allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and the query 0xffffffff.
const PERSONAS: [u64; 5] = [0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// ENOSYS, what `clone3` answers without CAP_SYS_ADMIN.
const ENOSYS: u32 = 38;

/// The runtime-spec's `LinuxSeccomp`, the fields a generated profile has (Go's order).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Profile {
    #[serde(rename = "defaultAction")]
    pub default_action: String,
    pub architectures: Vec<String>,
    pub syscalls: Vec<Rule>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(rename = "errnoRet", skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(rename = "valueTwo", skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        errno_ret: None,
        args: Vec::new(),
    }
}

/// Whether the running kernel is at least `major.minor` (`uname -r`).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// containerd's default profile for a process holding `caps` (the union of the spec's
/// capability sets), on this host's architecture.
pub fn default_profile(caps: &[String]) -> Profile {
    let mut syscalls = vec![allow(ALLOWED)];
    for persona in PERSONAS {
        let mut r = allow(&["personality"]);
        r.args.push(Arg {
            index: 0,
            value: persona,
            value_two: 0,
            op: "SCMP_CMP_EQ".into(),
        });
        syscalls.push(r);
    }
    if kernel_at_least(4, 8) {
        syscalls.push(allow(&["ptrace"]));
    }
    let architectures: Vec<String> = if cfg!(target_arch = "x86_64") {
        syscalls.push(allow(&["arch_prctl", "modify_ldt"]));
        vec![
            "SCMP_ARCH_X86_64".into(),
            "SCMP_ARCH_X86".into(),
            "SCMP_ARCH_X32".into(),
        ]
    } else if cfg!(target_arch = "aarch64") {
        // Not checked against ctr on an arm64 host.
        syscalls.push(allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]));
        vec!["SCMP_ARCH_ARM".into(), "SCMP_ARCH_AARCH64".into()]
    } else {
        Vec::new()
    };
    let has = |c: &str| caps.iter().any(|x| x == c);
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            syscalls.push(allow(names));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        let mut clone = allow(&["clone"]);
        clone.args.push(Arg {
            index: 0,
            value: CLONE_NAMESPACE_FLAGS,
            value_two: 0,
            op: "SCMP_CMP_MASKED_EQ".into(),
        });
        syscalls.push(clone);
        syscalls.push(Rule {
            names: vec!["clone3".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(ENOSYS),
            args: Vec::new(),
        });
    }
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        architectures,
        syscalls,
    }
}

/// `WithProfile(path)`: the profile a file holds, as JSON (ctr's messages on failure).
pub fn profile_from_file(path: &Path) -> Result<serde_json::Value> {
    let data = std::fs::read(path).map_err(|e| {
        anyhow!(
            "cannot load seccomp profile {:?}: open {}: {}",
            path.display().to_string(),
            path.display(),
            errno_text(&e)
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
        anyhow!(
            "decoding seccomp profile failed {:?}: {e}",
            path.display().to_string()
        )
    })?;
    if !v.is_object() {
        return Err(anyhow!(
            "decoding seccomp profile failed {:?}: json: cannot unmarshal into Go value of type specs.LinuxSeccomp",
            path.display().to_string()
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> Vec<Vec<String>> {
        p.syscalls.iter().map(|r| r.names.clone()).collect()
    }

    #[test]
    fn default_capabilities_keep_clone_masked_and_clone3_enosys() {
        let caps: Vec<String> = ["CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_KILL"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = default_profile(&caps);
        let n = names(&p);
        assert_eq!(n[0].len(), ALLOWED.len());
        assert!(n.contains(&vec!["chroot".to_string()]));
        assert!(!n.iter().flatten().any(|s| s == "mount" || s == "unshare"));
        let last = p.syscalls.last().unwrap();
        assert_eq!(
            (last.names[0].as_str(), last.errno_ret),
            ("clone3", Some(38))
        );
        let v = serde_json::to_value(&p).unwrap();
        let clone = &v["syscalls"][v["syscalls"].as_array().unwrap().len() - 2];
        assert_eq!(
            clone["args"],
            serde_json::json!([{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        assert!(v["syscalls"][0].get("args").is_none());
    }

    #[test]
    fn sys_admin_allows_mount_and_drops_the_clone_rules() {
        let p = default_profile(&["CAP_SYS_ADMIN".to_string()]);
        let n = names(&p);
        assert!(n.iter().any(|g| g.contains(&"mount".to_string())));
        assert!(!p.syscalls.iter().any(|r| r.errno_ret.is_some()));
    }

    #[test]
    fn profile_file_errors_name_the_file() {
        let e = profile_from_file(Path::new("/nonexistent/p.json")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot load seccomp profile \"/nonexistent/p.json\": open /nonexistent/p.json: no such file or directory"
        );
    }
}
