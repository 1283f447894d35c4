//! `ctr image import --compress-blobs`: a plain (uncompressed) layer of a docker archive is
//! stored gzip-compressed as well, labelled `containerd.io/uncompressed` = the plain
//! blob's digest, and the manifest made for the image names the compressed one, as
//! containerd's importer does. A compressed blob already in the namespace with that label
//! (an earlier import's) is used again instead of compressing anew. The gzip bytes are
//! flate2's, not Go's: the same layer gets another compressed digest than under ctr, but
//! the same uncompressed one.

use super::store::ArchiveStore;
use crate::content::Digest;
use crate::errdefs::{kind_of, ErrorKind};
use crate::metadata::encoding::Labels;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};

/// The label a compressed blob carries with its uncompressed digest.
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// The compressed blobs the namespace holds, by the uncompressed digest they are labelled
/// with: containerd's importer uses one of these for a layer whenever it finds one, with
/// or without `--compress-blobs`.
pub fn labelled(content: &dyn ArchiveStore) -> Result<HashMap<Digest, (Digest, u64)>> {
    let mut out = HashMap::new();
    for rec in content.walk()? {
        if let Some(Ok(plain)) = rec
            .labels
            .get(UNCOMPRESSED_LABEL)
            .map(|v| v.parse::<Digest>())
        {
            if content.info(&rec.digest).is_ok() {
                out.insert(plain, (rec.digest, rec.size));
            }
        }
    }
    Ok(out)
}

/// Store the gzip form of the plain layer `plain` (`size` bytes): its (digest, size).
pub fn compress(content: &dyn ArchiveStore, plain: &Digest, size: u64) -> Result<(Digest, u64)> {
    let want = plain.to_string();
    let ref_ = format!("compress-blob-sha256-{}", plain.encoded());
    let mut w = content
        .open_writer(&ref_, 0, None)?
        .with_context(|| format!("failed to open writer for {ref_}"))?;
    let mut counted = 0u64;
    let written = (|| -> Result<()> {
        let src = content.stream(plain)?;
        let mut out = Counting {
            inner: &mut w,
            count: &mut counted,
        };
        let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
        let n = std::io::copy(&mut src.take(size), &mut gz).context("compress the layer")?;
        if n != size {
            anyhow::bail!("layer {plain} ended at {n} of its {size} bytes");
        }
        gz.finish()?.flush()?;
        Ok(())
    })();
    if let Err(e) = written {
        drop(w);
        let _ = content.abort(&ref_);
        return Err(e.context(format!("compress layer {plain}")));
    }
    let (digest, n) = (w.digest(), counted);
    let labels = Labels::from([(UNCOMPRESSED_LABEL.to_owned(), want)]);
    match w.commit(n, Some(digest), labels.clone()) {
        Ok(_) => {}
        Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
            let path = format!("labels.{UNCOMPRESSED_LABEL}");
            content.update_labels(&digest, &labels, &[&path])?;
        }
        Err(e) => {
            let _ = content.abort(&ref_);
            return Err(e.context("failed to commit"));
        }
    }
    Ok((digest, n))
}

/// A writer that counts what passes.
struct Counting<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    count: &'a mut u64,
}

impl<W: Write + ?Sized> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
