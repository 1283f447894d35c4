//! Regular files of a layer written by a small pool of threads while the tar is read on
//! one: making files is what an unpack spends its time on (the kernel's create, write,
//! chown, chmod, utimes per file), and files in different places do not wait for each
//! other. Small files are read into memory by the tar thread and handed over with the
//! already-confined parent directory fd, so a worker never resolves a path; big files are
//! written by the tar thread itself, streamed.
//!
//! Order is kept where it matters: an entry whose path a worker is still writing, a
//! hardlink, a whiteout, and a directory about to be removed wait for every pending file
//! first ([`FileWriters::barrier`]), and the directory mtimes are set after all of them.
//! A worker's error is the apply's error; the first one wins.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Condvar, Mutex};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{futimens, Mode};
use nix::sys::time::TimeSpec;

use super::apply::{set_owner_mode_fd, write_sparse, write_sparse_from};
use super::safe_dir::set_xattr_fd;

/// Files up to this size go to a worker (read into memory first).
pub const SMALL_FILE: u64 = 256 << 10;
/// Jobs queued at most (so at most this many small files are held in memory).
pub const QUEUE: usize = 32;

/// What a regular file gets besides its bytes.
pub struct FileMeta {
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub struct FileJob {
    /// The confined parent directory (O_PATH).
    pub parent: std::sync::Arc<OwnedFd>,
    pub name: OsString,
    /// The entry's path, to keep a later entry of the same path waiting.
    pub rel: PathBuf,
    pub data: Vec<u8>,
    pub meta: FileMeta,
}

/// Where a file's bytes come from.
pub enum FileData<'a, R> {
    /// `size` bytes of a stream (the tar entry).
    Stream(&'a mut R, u64),
    /// Bytes read already (a small file handed to a worker).
    Memory(&'a [u8]),
}

/// Make the regular file `name` in `dir` with the bytes of `data` (zero blocks left as
/// holes), its owner, mode, xattrs and mtime.
pub fn create_file<R: Read>(
    dir: RawFd,
    name: &OsStr,
    data: FileData<'_, R>,
    meta: &FileMeta,
) -> Result<()> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .context("create file")?;
    // SAFETY: openat returned a new fd that nothing else owns.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    match data {
        FileData::Stream(src, size) => write_sparse(src, &file, size)?,
        FileData::Memory(bytes) => write_sparse_from(bytes, &file)?,
    }
    // Through the open fd: no second lookup of the name, and surely the file just made.
    let fd = file.as_raw_fd();
    set_owner_mode_fd(fd, meta.uid, meta.gid, meta.mode)?;
    for (k, v) in &meta.xattrs {
        set_xattr_fd(fd, name, k, v)?;
    }
    futimens(fd, &meta.mtime, &meta.mtime).context("set mtime")?;
    Ok(())
}

#[derive(Default)]
pub struct Shared {
    in_flight: HashSet<PathBuf>,
    err: Option<anyhow::Error>,
}

/// The shared state of one apply's pool; lives outside the thread scope.
#[derive(Default)]
pub struct Pool {
    state: Mutex<Shared>,
    changed: Condvar,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker: take jobs until the queue closes.
    pub fn work(&self, rx: &Mutex<Receiver<FileJob>>) {
        loop {
            let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                Ok(j) => j,
                Err(_) => return,
            };
            let r = create_file::<&[u8]>(
                job.parent.as_raw_fd(),
                &job.name,
                FileData::Memory(&job.data),
                &job.meta,
            );
            let mut st = self.lock();
            st.in_flight.remove(&job.rel);
            if let Err(e) = r {
                if st.err.is_none() {
                    st.err = Some(e.context(format!("apply {:?}", job.rel.display().to_string())));
                }
            }
            drop(st);
            self.changed.notify_all();
        }
    }
}

/// The tar thread's handle on the pool.
pub struct FileWriters<'p> {
    pub pool: &'p Pool,
    pub tx: Option<SyncSender<FileJob>>,
}

impl FileWriters<'_> {
    fn check(st: &mut Shared) -> Result<()> {
        match st.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Hand a small file to the pool.
    pub fn submit(&self, job: FileJob) -> Result<()> {
        {
            let mut st = self.pool.lock();
            Self::check(&mut st)?;
            st.in_flight.insert(job.rel.clone());
        }
        let tx = self.tx.as_ref().context("file writers closed")?;
        tx.send(job)
            .map_err(|_| anyhow!("file writer threads are gone"))
    }

    /// Whether a worker is still writing `rel`.
    pub fn busy(&self, rel: &std::path::Path) -> bool {
        self.pool.lock().in_flight.contains(rel)
    }

    /// Wait until every handed-over file is written; a worker's error is returned.
    pub fn barrier(&self) -> Result<()> {
        let mut st = self.pool.lock();
        while !st.in_flight.is_empty() && st.err.is_none() {
            st = self
                .pool
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
        Self::check(&mut st)
    }

    /// Close the queue (the workers end when it is drained) and wait for them.
    pub fn finish(&mut self) -> Result<()> {
        self.tx = None;
        self.barrier()
    }
}
