//! A write transaction on the content store: bytes go to an ingest's `data` file and become a
//! blob only when [`Writer::commit`] has checked their size and digest.
//!
//! Crash safety of a commit (the order matters):
//! 1. the data file is made read-only, given the commit time and fsynced: its bytes and mode
//!    are on disk before it has a blob name;
//! 2. it is renamed to `blobs/sha256/<hex>` with `RENAME_NOREPLACE`, so an existing blob is
//!    never replaced (that is AlreadyExists) and the name appears atomically;
//! 3. the `blobs/sha256` directory is fsynced, so the name survives a power cut before
//!    `commit` returns.
//!
//! The digest compared before step 1 is computed over exactly the bytes in the file: on resume the
//! data file is read back and hashed, so data torn by a crash cannot pass as the expected digest
//! (it would need to hash to it). A blob name therefore always names the bytes under it.

use crate::content::digest::{Digest, Digester};
use crate::content::ingest::{write_atomic, IngestPaths};
use crate::content::locks::RefLock;
use crate::content::store::Status;
use crate::errdefs::{err, ErrorKind};
use crate::timefmt;
use anyhow::Context;
use nix::fcntl::Flock;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

/// An open ingest, holding the ref's lock until it is committed, closed or dropped.
#[derive(Debug)]
pub struct Writer {
    pub(crate) ref_: String,
    pub(crate) paths: IngestPaths,
    pub(crate) blob_dir: PathBuf,
    pub(crate) file: Option<Flock<File>>,
    pub(crate) offset: u64,
    pub(crate) total: u64,
    pub(crate) digester: Digester,
    pub(crate) started_at: SystemTime,
    pub(crate) updated_at: SystemTime,
    /// Where the bytes not yet handed to writeback start ([`start_writeback`]).
    pub(crate) writeback_from: u64,
    pub(crate) _lock: RefLock,
}

/// Bytes written before their writeback is started.
const WRITEBACK_WINDOW: u64 = 4 << 20;

/// Ask the kernel to start writing `len` bytes of `file` from `from` to disk, without
/// waiting for it (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): the disk then works while the
/// blob is still arriving (and being unpacked), and the commit's fsync, which stays the one
/// guarantee, finds little left to write instead of the whole blob. A hint: errors (a
/// filesystem without it) are ignored.
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range on an fd this writer owns; it touches no memory of ours.
    let _ =
        unsafe { libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE) };
}

impl Writer {
    /// The ref this writer ingests.
    pub fn ref_(&self) -> &str {
        &self.ref_
    }

    /// Offset, total and times, as `Status` reports them.
    pub fn status(&self) -> Status {
        Status {
            ref_: self.ref_.clone(),
            offset: self.offset,
            total: self.total,
            started_at: self.started_at,
            updated_at: self.updated_at,
        }
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.digester.digest()
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        match self.file.as_mut() {
            Some(f) => Ok(&mut **f),
            None => Err(std::io::Error::other("writer is closed")),
        }
    }

    /// The bytes the ingest holds so far, from its start (for a resumed download, the
    /// prefix a streaming consumer must read before the rest arrives).
    pub fn written_data(&self) -> anyhow::Result<File> {
        let path = self.paths.data();
        File::open(&path).with_context(|| format!("open ingest data {}", path.display()))
    }

    /// Drop everything written (containerd supports only `Truncate(0)`).
    pub fn truncate(&mut self, size: u64) -> anyhow::Result<()> {
        if size != 0 {
            return Err(err(
                ErrorKind::InvalidArgument,
                "Truncate: unsupported size",
            ));
        }
        let f = self.file()?;
        f.set_len(0).context("truncate ingest data")?;
        f.seek(SeekFrom::Start(0)).context("seek ingest data")?;
        self.offset = 0;
        self.writeback_from = 0;
        self.digester = Digester::new();
        Ok(())
    }

    /// Verify and publish the content. `size` 0 and `expected` None skip those checks. On a
    /// size or digest mismatch the ingest stays (it can be truncated or aborted) and the error
    /// is FailedPrecondition; if the blob exists already the ingest is removed and the error
    /// is AlreadyExists. Returns the blob's digest.
    pub fn commit(mut self, size: u64, expected: Option<Digest>) -> anyhow::Result<Digest> {
        let Some(file) = self.file.take() else {
            return Err(err(
                ErrorKind::FailedPrecondition,
                "cannot commit on closed writer",
            ));
        };
        let actual = file.metadata().context("stat on ingest file failed")?.len();
        if actual != self.offset {
            return Err(err(
                ErrorKind::FailedPrecondition,
                format!(
                    "ingest data changed under the writer: {actual} bytes on disk, {} written",
                    self.offset
                ),
            ));
        }
        if size > 0 && size != actual {
            return Err(err(
                ErrorKind::FailedPrecondition,
                format!("unexpected commit size {actual}, expected {size}"),
            ));
        }
        let dgst = self.digester.digest();
        if let Some(exp) = expected {
            if exp != dgst {
                return Err(err(
                    ErrorKind::FailedPrecondition,
                    format!("unexpected commit digest {dgst}, expected {exp}"),
                ));
            }
        }

        // Read-only (removing write and exec bits, as containerd does) and stamped with the
        // commit time before the name exists, then everything to disk.
        let mode = file
            .metadata()
            .context("stat ingest file")?
            .permissions()
            .mode()
            & 0o7777
            & !0o333;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .context("make ingest read-only")?;
        let now = SystemTime::now();
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(now)
                .set_modified(now),
        )
        .context("set commit time")?;
        file.sync_all().context("sync failed")?;

        let target = self.blob_dir.join(dgst.encoded());
        match rename_noreplace(&self.paths.data(), &target) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                drop(file);
                let _ = std::fs::remove_dir_all(&self.paths.dir);
                return Err(err(ErrorKind::AlreadyExists, format!("content {dgst}")));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "commit {} to {}",
                        self.paths.data().display(),
                        target.display()
                    )
                })
            }
        }
        drop(file);
        File::open(&self.blob_dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("sync {}", self.blob_dir.display()))?;
        // The blob is published; leftovers of the ingest are only clutter now.
        let _ = std::fs::remove_dir_all(&self.paths.dir);
        Ok(dgst)
    }

    /// Close, keeping the ingest for a later writer to resume (containerd's `Close`).
    pub fn close(mut self) -> anyhow::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all().context("sync ingest data")?;
            write_atomic(
                &self.paths.updated_at(),
                timefmt::format(self.updated_at).as_bytes(),
            )?;
        }
        Ok(())
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file()?.write(buf)?;
        self.digester.update(&buf[..n]);
        self.offset += n as u64;
        self.updated_at = SystemTime::now();
        if self.offset - self.writeback_from >= WRITEBACK_WINDOW {
            let (from, len) = (self.writeback_from, self.offset - self.writeback_from);
            start_writeback(self.file()?, from, len);
            self.writeback_from = self.offset;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// rename(2) that fails with EEXIST instead of replacing; plain rename after a existence
/// check where the filesystem lacks RENAME_NOREPLACE (EINVAL).
fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            if to.exists() {
                return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(std::io::Error::from(e)),
    }
}
