//! Reading a committed blob at any offset (containerd's `ReaderAt`).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// An open blob.
#[derive(Debug)]
pub struct Reader {
    file: File,
    size: u64,
}

impl Reader {
    /// Open the blob file at `path`.
    pub fn open(path: &Path) -> std::io::Result<Reader> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(Reader { file, size })
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Read up to `buf.len()` bytes at `offset`; 0 at or past the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        self.file.read_at(buf, offset)
    }

    /// Read the whole blob, refusing one larger than `limit` bytes (manifests, configs).
    pub fn read_all(&self, limit: u64) -> anyhow::Result<Vec<u8>> {
        if self.size > limit {
            anyhow::bail!(
                "blob is {} bytes, more than the limit of {limit}",
                self.size
            );
        }
        let mut out = Vec::with_capacity(self.size as usize);
        (&self.file).take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            anyhow::bail!("blob grew past the limit of {limit} bytes while reading");
        }
        Ok(out)
    }

    /// A sequential reader from `offset` (for streaming to a client or an unpacker).
    pub fn stream_from(&self, offset: u64) -> std::io::Result<File> {
        use std::io::{Seek, SeekFrom};
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f)
    }
}
