//! Test support: run process-wide changes (capabilities, uid, rlimits, scheduler…) in a forked
//! child so the test process stays untouched, then let the parent inspect the live child
//! through /proc/<pid> before it is killed.
//!
//! The child does its work on the thread that forked (the only thread it has), reports
//! `Ok`/the error text over a pipe with a length prefix (so the parent never waits for an EOF
//! that another test's concurrently forked child could delay by holding a copy of the pipe),
//! then sleeps until the parent kills it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

/// Fork; in the child run `work`; in the parent run `inspect(pid, work_result)` while the child
/// is alive and paused, then kill and reap it. Returns what `inspect` returns.
pub(crate) fn with_child<W, I, T>(work: W, inspect: I) -> T
where
    W: FnOnce() -> anyhow::Result<()>,
    I: FnOnce(Pid, Result<(), String>) -> T,
{
    let (rd, wr) = nix::unistd::pipe().expect("pipe");
    // SAFETY: the child only runs `work` (raw syscalls in these tests), writes to a pipe and
    // then sleeps or _exits; it never returns into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(rd);
            // SAFETY: PR_SET_PDEATHSIG takes integers only; the child must not outlive a
            // test run that is killed.
            unsafe {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let msg = match res {
                Ok(Ok(())) => String::new(),
                Ok(Err(e)) => format!("E{e:#}"),
                Err(_) => "Epanic in child".to_string(),
            };
            let mut buf = (msg.len() as u32).to_le_bytes().to_vec();
            buf.extend_from_slice(msg.as_bytes());
            let _ = nix::unistd::write(&wr, &buf);
            loop {
                // SAFETY: pause only waits for a signal.
                unsafe { libc::pause() };
            }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let report = read_report(&rd, child);
            let out = inspect(child, report);
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            out
        }
    }
}

fn read_report(rd: &OwnedFd, child: Pid) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() >= 4 {
            let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                let msg = String::from_utf8_lossy(&buf[4..4 + len]).into_owned();
                return match msg.strip_prefix('E') {
                    Some(e) => Err(e.to_string()),
                    None => Ok(()),
                };
            }
        }
        if Instant::now() > deadline {
            let _ = kill(child, Signal::SIGKILL);
            return Err("child did not report within 30s".into());
        }
        let mut pfd = [nix::poll::PollFd::new(
            // SAFETY: rd outlives this poll call.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(rd.as_raw_fd()) },
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(1000u16));
        match nix::unistd::read(rd.as_raw_fd(), &mut chunk) {
            Ok(0) => return Err("child exited without a report".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(format!("read report: {e}")),
        }
    }
}

/// One `Key:\tvalue` line of /proc/<pid>/status.
pub(crate) fn status_field(pid: Pid, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// A capability mask field (CapBnd, CapEff…) of /proc/<pid>/status.
pub(crate) fn status_mask(pid: Pid, key: &str) -> u64 {
    u64::from_str_radix(&status_field(pid, key), 16).expect("hex mask")
}
