//! One thread for all of the shim's stdio copying and fd watching: a `poll(2)` loop over
//! every copy's source and destination, instead of a blocked thread per stream.
//!
//! A copy reads its source only when nothing is pending for its destination, so a slow or
//! vanished reader holds the stream back (the writer blocks in the kernel pipe) and no
//! output is lost or buffered without bound. All fds are made non-blocking; those handed
//! in are the shim's own open files (FIFO ends, its side of pipes, pty master dups).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::reaper::lock;

/// The loop's stack: it only copies through a heap buffer and runs short callbacks.
const LOOP_STACK: usize = 64 * 1024;
/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;
/// Reads per copy per wake-up before the other copies get their turn.
const ROUNDS: usize = 8;

/// Set once a copy has ended (source at EOF and all of it written, or an error).
#[derive(Clone, Default)]
pub struct CopyDone(Arc<(Mutex<bool>, Condvar)>);

impl CopyDone {
    pub fn is_finished(&self) -> bool {
        *lock(&self.0 .0)
    }

    /// Waits until the copy has ended or `deadline` passed; returns whether it ended.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let (m, cv) = &*self.0;
        let mut ended = lock(m);
        while !*ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            ended = cv
                .wait_timeout(ended, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn set(&self) {
        let (m, cv) = &*self.0;
        *lock(m) = true;
        cv.notify_all();
    }
}

struct Copy {
    from: File,
    to: File,
    /// Read but not yet written.
    pending: Vec<u8>,
    eof: bool,
    done: CopyDone,
    after: Option<Box<dyn FnOnce() + Send>>,
}

/// Called when its fd is readable; returns false to stop watching.
type OnReadable = Box<dyn FnMut(&mut File) -> bool + Send>;

enum Job {
    Copy(Copy),
    Watch(File, OnReadable),
}

/// What a job waits for next.
enum Next {
    Read,
    Write,
    Done,
}

struct IoLoop {
    new_jobs: Mutex<Vec<Job>>,
    /// An eventfd that wakes the loop for new jobs.
    wake: File,
}

static LOOP: OnceLock<Result<IoLoop, String>> = OnceLock::new();

fn set_nonblocking(f: &File) -> Result<()> {
    crate::linux::fds::set_nonblocking(std::os::fd::AsFd::as_fd(f), true)
        .context("set stdio fd non-blocking")
}

fn start() -> Result<IoLoop> {
    // SAFETY: eventfd takes no pointers; the returned fd is owned by the File below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("create io loop eventfd");
    }
    // SAFETY: fd is a fresh eventfd nothing else owns.
    let wake = unsafe { File::from_raw_fd(fd) };
    let theirs = wake.try_clone().context("dup io loop eventfd")?;
    std::thread::Builder::new()
        .name("io".into())
        .stack_size(LOOP_STACK)
        .spawn(move || run(theirs))
        .context("spawn the io thread")?;
    Ok(IoLoop {
        new_jobs: Mutex::new(Vec::new()),
        wake,
    })
}

fn submit(job: Job) -> Result<()> {
    let l = match LOOP.get_or_init(|| start().map_err(|e| format!("{e:#}"))) {
        Ok(l) => l,
        Err(e) => anyhow::bail!("{e}"),
    };
    lock(&l.new_jobs).push(job);
    (&l.wake)
        .write_all(&1u64.to_ne_bytes())
        .context("wake the io thread")
}

/// Copies `from` to `to` until `from` ends (EOF, or EIO of a pty master whose terminal
/// is gone) or `to` fails; then drops both and calls `after`.
pub fn copy(from: File, to: File, after: impl FnOnce() + Send + 'static) -> Result<CopyDone> {
    set_nonblocking(&from)?;
    set_nonblocking(&to)?;
    let done = CopyDone::default();
    submit(Job::Copy(Copy {
        from,
        to,
        pending: Vec::new(),
        eof: false,
        done: done.clone(),
        after: Some(Box::new(after)),
    }))?;
    Ok(done)
}

/// Calls `on_readable` whenever `fd` is readable, until it returns false.
pub fn watch(fd: File, on_readable: impl FnMut(&mut File) -> bool + Send + 'static) -> Result<()> {
    submit(Job::Watch(fd, Box::new(on_readable)))
}

impl Copy {
    /// Moves what it can without blocking; says what to wait for.
    fn service(&mut self, scratch: &mut [u8]) -> Next {
        for _ in 0..ROUNDS {
            if !self.pending.is_empty() {
                match self.to.write(&self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                        if !self.pending.is_empty() {
                            continue;
                        }
                        // Give the memory back: most streams are idle most of the time.
                        self.pending = Vec::new();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Write,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Next::Done,
                }
            }
            if self.eof {
                return Next::Done;
            }
            match self.from.read(scratch) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Read,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO from a pty master once the terminal's last holder is gone.
                Err(_) => self.eof = true,
            }
        }
        // Used its turn; come back as soon as poll says so (nothing is lost either way).
        if self.pending.is_empty() {
            Next::Read
        } else {
            Next::Write
        }
    }

    fn finish(mut self) {
        drop(self.to);
        drop(self.from);
        if let Some(after) = self.after.take() {
            after();
        }
        self.done.set();
    }
}

fn drain_wake(wake: &mut File) {
    let mut b = [0u8; 8];
    let _ = wake.read(&mut b);
}

/// Serves every job once (new ones and those poll reported) and drops finished ones.
/// The read buffer lives for this call only: while the loop waits in poll the heap holds
/// nothing for it, and the idle trim can give its pages back.
fn serve(jobs: &mut Vec<(Job, Next)>) {
    if !jobs.iter().any(|(j, _)| matches!(j, Job::Copy(_))) {
        return;
    }
    let mut scratch = vec![0u8; CHUNK];
    let mut i = 0;
    while i < jobs.len() {
        let next = match &mut jobs[i].0 {
            Job::Copy(c) => c.service(&mut scratch),
            Job::Watch(..) => Next::Read,
        };
        if let Next::Done = next {
            if let (Job::Copy(c), _) = jobs.swap_remove(i) {
                c.finish();
            }
            continue;
        }
        jobs[i].1 = next;
        i += 1;
    }
}

fn run(mut wake: File) {
    let mut jobs: Vec<(Job, Next)> = Vec::new();
    loop {
        drain_wake(&mut wake);
        if let Some(Ok(l)) = LOOP.get() {
            for job in lock(&l.new_jobs).drain(..) {
                jobs.push((job, Next::Read));
            }
        }
        serve(&mut jobs);
        let ready = {
            let mut fds = Vec::with_capacity(jobs.len() + 1);
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            for (job, next) in &jobs {
                fds.push(match (job, next) {
                    (Job::Copy(c), Next::Write) => PollFd::new(c.to.as_fd(), PollFlags::POLLOUT),
                    (Job::Copy(c), _) => PollFd::new(c.from.as_fd(), PollFlags::POLLIN),
                    (Job::Watch(f, _), _) => PollFd::new(f.as_fd(), PollFlags::POLLIN),
                });
            }
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            fds.iter()
                .skip(1)
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect::<Vec<bool>>()
        };
        // Watches run here; copies are served at the top of the next turn (all of them:
        // serving one that is not ready only costs an EAGAIN). Backwards, so swap_remove
        // only moves a job that was already looked at.
        for i in (0..jobs.len()).rev() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Job::Watch(f, on_readable) = &mut jobs[i].0 {
                if !on_readable(f) {
                    jobs.swap_remove(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (File::from(r), File::from(w))
    }

    fn wait_for(done: &CopyDone) {
        assert!(done.wait_until(Instant::now() + Duration::from_secs(10)));
        assert!(done.is_finished());
    }

    #[test]
    fn copies_everything_to_a_slow_reader_then_calls_after() {
        let (src_r, mut src_w) = pipe();
        let (dst_r, dst_w) = pipe();
        let (tx, rx) = std::sync::mpsc::channel();
        let done = copy(src_r, dst_w, move || tx.send(()).unwrap()).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let writer = std::thread::spawn(move || src_w.write_all(&data).unwrap());
        let mut got = Vec::new();
        let mut r = dst_r;
        let mut buf = [0u8; 3000];
        loop {
            // Slower than the writer, so the copy has to wait for POLLOUT.
            std::thread::sleep(Duration::from_micros(50));
            match r.read(&mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        writer.join().unwrap();
        assert_eq!(got.len(), expect.len());
        assert!(got == expect);
        wait_for(&done);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn ends_when_the_destination_is_gone() {
        let (src_r, mut src_w) = pipe();
        let (dst_r, dst_w) = pipe();
        drop(dst_r);
        let done = copy(src_r, dst_w, || {}).unwrap();
        src_w.write_all(b"lost").unwrap();
        wait_for(&done);
    }

    #[test]
    fn watch_calls_until_false() {
        let (r, mut w) = pipe();
        let (tx, rx) = std::sync::mpsc::channel();
        watch(r, move |f| {
            let mut b = [0u8; 1];
            let n = f.read(&mut b).unwrap_or(0);
            tx.send(b[0]).unwrap();
            n == 1 && b[0] != b'q'
        })
        .unwrap();
        w.write_all(b"a").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b'a');
        w.write_all(b"q").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b'q');
        // The watch ended and closed its fd: the write may fail with EPIPE.
        let _ = w.write_all(b"z");
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    }
}
