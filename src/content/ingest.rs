//! An ingest directory, containerd's layout: `ingest/<hex sha256(ref)>/` holding `data` (the
//! bytes so far), `ref` (the ref string), `startedat`, `updatedat` (Go `MarshalText` times)
//! and `total` (expected size, decimal, only when known).

use crate::content::digest::Digest;
use crate::timefmt;
use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The paths of one ingest.
#[derive(Clone, Debug)]
pub struct IngestPaths {
    /// `ingest/<hex>`.
    pub dir: PathBuf,
}

impl IngestPaths {
    /// The ingest of `ref_` under the store's `ingest/` directory. The ref is hashed to keep
    /// the path short and free of separators; it is not the digest of the content.
    pub fn new(ingest_root: &Path, ref_: &str) -> IngestPaths {
        IngestPaths {
            dir: ingest_root.join(Digest::of(ref_.as_bytes()).encoded()),
        }
    }
    /// The bytes written so far.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// The ref string.
    pub fn ref_file(&self) -> PathBuf {
        self.dir.join("ref")
    }
    /// When the ingest began.
    pub fn started_at(&self) -> PathBuf {
        self.dir.join("startedat")
    }
    /// When it was last written (the data file's mtime may be newer).
    pub fn updated_at(&self) -> PathBuf {
        self.dir.join("updatedat")
    }
    /// The expected total size.
    pub fn total(&self) -> PathBuf {
        self.dir.join("total")
    }

    /// Write the ref, times and total of a fresh ingest.
    pub fn write_meta(&self, ref_: &str, started: SystemTime, total: u64) -> anyhow::Result<()> {
        write_atomic(&self.ref_file(), ref_.as_bytes())?;
        write_atomic(&self.started_at(), timefmt::format(started).as_bytes())?;
        write_atomic(&self.updated_at(), timefmt::format(started).as_bytes())?;
        if total > 0 {
            write_atomic(&self.total(), total.to_string().as_bytes())?;
        } else {
            match std::fs::remove_file(self.total()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("remove {}", self.total().display()))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The ref recorded in the directory.
    pub fn read_ref(&self) -> std::io::Result<String> {
        std::fs::read_to_string(self.ref_file())
    }

    /// The recorded total, 0 when absent or unreadable (containerd treats it the same).
    pub fn read_total(&self) -> u64 {
        std::fs::read_to_string(self.total())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Read a timestamp file.
    pub fn read_time(&self, p: &Path) -> anyhow::Result<SystemTime> {
        let s = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
        timefmt::parse(&s)
            .with_context(|| format!("could not parse timestamp file {}", p.display()))
    }
}

/// Replace `path` with `data` all at once: a temporary file written with O_SYNC, renamed over
/// it, so a crash leaves the old or the new content, never a torn one.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o666)
        .custom_flags(libc::O_SYNC)
        .open(&tmp)
        .with_context(|| format!("create tmp file {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("write tmp file {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("rename tmp file to {}", path.display()))
}
