//! File descriptors crossing into the container: only stdio, `--preserve-fds` and
//! `LISTEN_FDS` may survive the final execve.
//!
//! CVE-2024-21626: a leaked fd (for example an O_PATH handle on a host directory such as the
//! cgroup mount) let the container process reach the host filesystem, directly or by being its
//! cwd. [`close_fds_above`] marks every fd above the preserved ones close-on-exec right before
//! the final execve (runc `CloseExecFrom`), and [`verify_cwd_inside_root`] checks after the
//! chdir that the cwd is reachable from the container's root.

use std::os::fd::{BorrowedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

/// Mark every fd greater than `keep_upto` close-on-exec (runc marks `3 + preserved` and up,
/// so pass `2 + preserved`). Uses close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11+) and, when
/// that fails for any reason, walks /proc/self/fd as runc 1.1 always does: a seccomp profile
/// may deny close_range with EPERM (older Docker and Podman profiles do not list it), or an
/// old kernel answer ENOSYS or EINVAL.
pub fn close_fds_above(keep_upto: RawFd) -> Result<()> {
    let first = keep_upto.saturating_add(1).max(0) as libc::c_uint;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let rc =
        unsafe { libc::close_range(first, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if rc == 0 {
        return Ok(());
    }
    let close_range_err = Errno::last();
    mark_cloexec_via_proc(keep_upto).with_context(|| {
        format!("close_range({first}, ~0, CLOSE_RANGE_CLOEXEC) failed ({close_range_err}), and so did the fallback")
    })
}

/// The fallback of [`close_fds_above`]: every fd listed in /proc/self/fd.
fn mark_cloexec_via_proc(keep_upto: RawFd) -> Result<()> {
    for fd in open_fds()? {
        if fd > keep_upto {
            // The fd of the /proc/self/fd listing itself is closed by now: EBADF is fine.
            match set_cloexec_raw(fd) {
                Ok(()) | Err(Errno::EBADF) => {}
                Err(e) => return Err(e).with_context(|| format!("mark fd {fd} close-on-exec")),
            }
        }
    }
    Ok(())
}

/// Every fd open in this process, from /proc/self/fd.
pub fn open_fds() -> Result<Vec<RawFd>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("read /proc/self/fd")? {
        let entry = entry.context("read /proc/self/fd")?;
        if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// Set FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> Result<()> {
    use std::os::fd::AsRawFd;
    set_cloexec_raw(fd.as_raw_fd())
        .with_context(|| format!("mark fd {} close-on-exec", fd.as_raw_fd()))
}

/// Set or clear O_NONBLOCK on `fd` (the file status flag: shared by every dup of it).
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL only reads the fd's status flags.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(Errno::last()).with_context(|| format!("F_GETFL on fd {raw}"));
    }
    let want = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL only changes the fd's status flags.
    if want != flags && unsafe { libc::fcntl(raw, libc::F_SETFL, want) } < 0 {
        let what = if nonblocking { "set" } else { "clear" };
        return Err(Errno::last()).with_context(|| format!("{what} O_NONBLOCK on fd {raw}"));
    }
    Ok(())
}

/// Clear FD_CLOEXEC on `fd` (for fds that must reach the container, e.g. preserved fds).
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let flags = fd_flags(raw).with_context(|| format!("F_GETFD on fd {raw}"))?;
    // SAFETY: F_SETFD only changes the fd's flags.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(Errno::last()).with_context(|| format!("clear close-on-exec on fd {raw}"));
    }
    Ok(())
}

fn fd_flags(fd: RawFd) -> std::result::Result<libc::c_int, Errno> {
    // SAFETY: F_GETFD only reads the fd's flags; a closed fd gives EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Errno::last());
    }
    Ok(flags)
}

/// FD_CLOEXEC on `fd` with fcntl, or with ioctl(FIOCLEX) where a seccomp profile denies fcntl.
fn set_cloexec_raw(fd: RawFd) -> std::result::Result<(), Errno> {
    match fd_flags(fd) {
        Ok(flags) if flags & libc::FD_CLOEXEC != 0 => return Ok(()),
        Ok(flags) => {
            // SAFETY: F_SETFD only changes the fd's flags.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EPERM | Errno::ENOSYS | Errno::EACCES => {}
                e => return Err(e),
            }
        }
        Err(Errno::EPERM | Errno::ENOSYS | Errno::EACCES) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: FIOCLEX takes no argument and only sets the fd's close-on-exec flag.
    if unsafe { libc::ioctl(fd, libc::FIOCLEX) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// CVE-2024-21626: after chdir to `process.cwd`, the cwd must be reachable from the
/// container's root. getcwd(2) fails with ENOENT when it is not (the kernel would prefix the
/// path with "(unreachable)"). This runs under the container's seccomp profile when
/// no_new_privs is off: where the profile denies getcwd (EPERM or ENOSYS), the same question
/// is answered by walking up from "." (runc fails there instead).
pub fn verify_cwd_inside_root() -> Result<()> {
    const BREAKOUT: &str = "current working directory is outside of container mount namespace root -- possible container breakout detected";
    let inside = match std::env::current_dir() {
        Ok(p) if p.is_absolute() => true,
        Ok(p) => bail!("current working directory {} is outside of container mount namespace root -- possible container breakout detected", p.display()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
            cwd_reaches_root().map_err(|e| {
                anyhow::anyhow!(
                    "failed to verify if current working directory is safe: {}",
                    super::go_errno::errno_text(&std::io::Error::from(e))
                )
            })?
        }
        // runc's wording.
        Err(e) => bail!(
            "failed to verify if current working directory is safe: {}",
            super::go_errno::errno_text(&e)
        ),
    };
    if !inside {
        bail!("{BREAKOUT}");
    }
    Ok(())
}

/// Whether walking up from the cwd by ".." meets the process's root directory (".." of the
/// root is the root itself, so a cwd inside always gets there); a cwd outside ends at the top
/// of its own tree without meeting it. Uses stat(2) (newfstatat) only.
fn cwd_reaches_root() -> std::result::Result<bool, Errno> {
    let id = |p: &str| nix::sys::stat::stat(p).map(|s| (s.st_dev, s.st_ino));
    let root = id("/")?;
    let mut path = String::from(".");
    // PATH_MAX bounds how far "./../.." can go: 4096 / 3 levels.
    while path.len() + 3 < libc::PATH_MAX as usize {
        let here = id(&path)?;
        if here == root {
            return Ok(true);
        }
        path.push_str("/..");
        if id(&path)? == here {
            return Ok(false);
        }
    }
    Err(Errno::ENAMETOOLONG)
}

/// How many socket-activation fds (LISTEN_FDS) were passed to us, honoured only when
/// LISTEN_PID names our pid (go-systemd `activation.Files`, which runc uses). The fds are
/// 3..3+N; the caller keeps them open and passes them on with [`listen_fds_env`].
pub fn listen_fds_from_env(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    our_pid: u32,
) -> usize {
    let Some(pid) = listen_pid.and_then(|p| p.trim().parse::<u32>().ok()) else {
        return 0;
    };
    if pid != our_pid {
        return 0;
    }
    listen_fds
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0)
}

/// The environment entries runc adds for `count` passed socket-activation fds: the container
/// sees them as fds 3..3+count and, whatever its pid, `LISTEN_PID=1`.
pub fn listen_fds_env(count: usize) -> Vec<String> {
    if count == 0 {
        return Vec::new();
    }
    vec![format!("LISTEN_FDS={count}"), "LISTEN_PID=1".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::test_child::with_child;
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

    fn cloexec(fd: RawFd) -> bool {
        fd_flags(fd).unwrap() & libc::FD_CLOEXEC != 0
    }

    fn all_cloexec_above(n: RawFd) -> anyhow::Result<()> {
        for fd in open_fds()? {
            if fd > n && fd_flags(fd).is_ok() {
                anyhow::ensure!(cloexec(fd), "fd {fd} is not CLOEXEC");
            }
        }
        Ok(())
    }

    /// Open a non-CLOEXEC fd at a high number.
    fn leaky_fd_at(n: RawFd) -> OwnedFd {
        let f = std::fs::File::open("/").unwrap();
        // SAFETY: dup2 onto an fd number this test owns.
        let rc = unsafe { libc::dup2(f.as_raw_fd(), n) };
        assert_eq!(rc, n);
        // SAFETY: n is now an fd we own.
        unsafe { OwnedFd::from_raw_fd(n) }
    }

    #[test]
    fn nothing_above_n_survives_exec_in_child() {
        // In a child: the test harness's other fds must not be touched.
        with_child(
            || {
                let low = leaky_fd_at(200);
                let high = leaky_fd_at(900);
                anyhow::ensure!(!cloexec(200) && !cloexec(900), "setup");
                let mid = leaky_fd_at(700);
                close_fds_above(800)?;
                anyhow::ensure!(
                    !cloexec(200) && !cloexec(700),
                    "fds <= 800 keep their flags"
                );
                all_cloexec_above(800)?;
                mark_cloexec_via_proc(500)?;
                anyhow::ensure!(!cloexec(200), "fd 200 <= 500 must keep its flags");
                all_cloexec_above(500)?;
                drop((low, mid, high));
                Ok(())
            },
            |_, res| res.unwrap(),
        );
    }

    /// Whether /proc/self/fdinfo says `fd` is close-on-exec; needs no fcntl.
    fn cloexec_per_fdinfo(fd: RawFd) -> anyhow::Result<bool> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .ok_or_else(|| anyhow::anyhow!("no flags in fdinfo of {fd}"))?;
        Ok(u32::from_str_radix(flags.trim(), 8)? & libc::O_CLOEXEC as u32 != 0)
    }

    /// A profile denying `names` with `errno` (default allow), in force in this process.
    fn deny(names: &[&str], errno: i32) -> anyhow::Result<()> {
        let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        }))?;
        let p = crate::linux::seccomp::compile(&s)?;
        // SAFETY: prctl with integer arguments only.
        anyhow::ensure!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0);
        crate::linux::seccomp::install(&p)?;
        Ok(())
    }

    /// A seccomp profile that does not allow close_range (or also fcntl) must not stop the
    /// sweep: runc walks /proc/self/fd.
    #[test]
    fn sweep_survives_a_profile_denying_close_range_and_fcntl_in_child() {
        for denied in [&["close_range"][..], &["close_range", "fcntl"][..]] {
            for errno in [libc::EPERM, libc::ENOSYS] {
                with_child(
                    || {
                        let fds = [leaky_fd_at(300), leaky_fd_at(301), leaky_fd_at(900)];
                        deny(denied, errno)?;
                        close_fds_above(300)?;
                        anyhow::ensure!(!cloexec_per_fdinfo(300)?, "fd 300 must keep its flags");
                        for fd in [301, 900] {
                            anyhow::ensure!(cloexec_per_fdinfo(fd)?, "fd {fd} is not CLOEXEC");
                        }
                        drop(fds);
                        Ok(())
                    },
                    |_, res| res.unwrap_or_else(|e| panic!("deny {denied:?} with {errno}: {e}")),
                );
            }
        }
    }

    #[test]
    fn set_and_clear_cloexec() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        clear_cloexec(r.as_fd()).unwrap();
        assert!(!cloexec(r.as_raw_fd()));
        set_cloexec(r.as_fd()).unwrap();
        assert!(cloexec(r.as_raw_fd()));
    }

    #[test]
    fn cwd_outside_root_is_detected_in_child() {
        let dir = std::env::temp_dir().join(format!("ocibox-cwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cwd")).unwrap();
        std::fs::create_dir_all(dir.join("root")).unwrap();
        let (cwd, root) = (dir.join("cwd"), dir.join("root"));
        with_child(
            move || {
                std::env::set_current_dir(&cwd)?;
                verify_cwd_inside_root()?;
                // A root that does not contain the cwd: the cwd is a leaked host directory.
                nix::unistd::chroot(&root)?;
                match verify_cwd_inside_root() {
                    Err(e) if format!("{e:#}").contains("possible container breakout") => Ok(()),
                    other => anyhow::bail!("expected breakout error, got {other:?}"),
                }
            },
            |_, res| res,
        )
        .unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            panic!("{e}")
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A profile denying getcwd (runc then fails) must neither stop the check nor fool it.
    #[test]
    fn cwd_check_survives_a_profile_denying_getcwd_in_child() {
        let dir = std::env::temp_dir().join(format!("ocibox-cwd-nogetcwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cwd")).unwrap();
        std::fs::create_dir_all(dir.join("root/in/deeper")).unwrap();
        for errno in [libc::EPERM, libc::ENOSYS] {
            let root = dir.join("root");
            let res = with_child(
                move || {
                    deny(&["getcwd"], errno)?;
                    anyhow::ensure!(std::env::current_dir().is_err(), "getcwd is not denied");
                    nix::unistd::chroot(&root)?;
                    std::env::set_current_dir("/in/deeper")?;
                    verify_cwd_inside_root()?;
                    std::env::set_current_dir("/")?;
                    verify_cwd_inside_root()
                },
                |_, res| res,
            );
            res.unwrap_or_else(|e| panic!("errno {errno}: {e}"));
            // A cwd the root does not contain (set before the chroot): a leaked host directory.
            let (cwd, root) = (dir.join("cwd"), dir.join("root"));
            with_child(
                move || {
                    deny(&["getcwd"], errno)?;
                    std::env::set_current_dir(&cwd)?;
                    nix::unistd::chroot(&root)?;
                    match verify_cwd_inside_root() {
                        Err(e) if format!("{e:#}").contains("possible container breakout") => {
                            Ok(())
                        }
                        other => anyhow::bail!("expected breakout error, got {other:?}"),
                    }
                },
                |_, res| res,
            )
            .unwrap_or_else(|e| panic!("errno {errno}: {e}"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listen_fds_like_runc() {
        assert_eq!(listen_fds_from_env(Some("42"), Some("2"), 42), 2);
        assert_eq!(listen_fds_from_env(Some("41"), Some("2"), 42), 0);
        assert_eq!(listen_fds_from_env(None, Some("2"), 42), 0);
        assert_eq!(listen_fds_from_env(Some("42"), Some("x"), 42), 0);
        assert_eq!(listen_fds_env(2), vec!["LISTEN_FDS=2", "LISTEN_PID=1"]);
        assert!(listen_fds_env(0).is_empty());
    }
}
