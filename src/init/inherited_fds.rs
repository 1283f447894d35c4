//! Descriptors the init inherited by accident: whatever the caller of the runtime had open
//! without close-on-exec (an fd 4, a /dev/null), beyond stdio and `--preserve-fds`.
//! runc's waiting init holds none of them, so neither does ours: they are closed as soon
//! as the bootstrap says which descriptors are wanted, long before exec.fifo.

use super::message::Bootstrap;
use std::os::fd::RawFd;

/// Close every descriptor from 3 + preserve_fds upwards except the init's own (the channel,
/// the console socket, the exec fifo).
pub fn close_unwanted(b: &Bootstrap, channel: RawFd) {
    let first = 3 + b.preserve_fds as RawFd;
    let mut keep: Vec<RawFd> = [Some(channel), b.console_fd, b.fifo_fd]
        .into_iter()
        .flatten()
        .filter(|fd| *fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = first;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if from < k {
            close_range(from, k - 1);
        }
        from = k.saturating_add(1);
    }
}

/// close_range(2) without flags; before any seccomp filter, so only an old kernel
/// (ENOSYS) makes it fail, and then each open descriptor in the range is closed.
fn close_range(from: RawFd, to: RawFd) {
    // SAFETY: close_range only closes descriptors; none in the range is owned by a Rust
    // object of this process (the init's own descriptors are outside every range).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, from as u32, to as u32, 0u32) };
    if rc == 0 {
        return;
    }
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| (from..=to).contains(fd))
            .collect(),
        Err(_) => return,
    };
    for fd in open {
        // SAFETY: as above; the descriptor of the read_dir above is closed already and
        // EBADF for it is harmless.
        unsafe { libc::close(fd) };
    }
}
