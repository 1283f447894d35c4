//! Whole-blob helpers on top of writers and readers, as containerd's `content.WriteBlob` and
//! `content.ReadBlob`: what fetchers, importers and the image code call.

use crate::content::digest::Digest;
use crate::content::store::Store;
use crate::errdefs::{err, kind_of, ErrorKind};
use anyhow::Context;
use std::io::{Read, Write};

/// What [`write_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The blob was written (`resumed_at` bytes were already in the ingest).
    Committed {
        /// Bytes of an earlier, interrupted ingest that were kept.
        resumed_at: u64,
    },
    /// The blob was in the store already (containerd treats this as success).
    AlreadyExists,
}

/// Copy `r` into the store under `ref_` and commit it as `size` bytes with `digest`.
/// An interrupted ingest of the same ref is resumed: the first `offset` bytes of `r` are
/// skipped (read and dropped; the final digest check guards that they were the same).
/// A reader that yields more than `size` bytes, or bytes of another digest, is refused
/// before anything is committed and its ingest is aborted (a retry starts over); a reader
/// that ends early leaves the ingest to be resumed.
pub fn write_blob(
    store: &Store,
    ref_: &str,
    mut r: impl Read,
    size: u64,
    digest: Digest,
) -> anyhow::Result<Written> {
    let mut w = match store.writer(ref_, size, Some(digest)) {
        Ok(w) => w,
        Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => return Ok(Written::AlreadyExists),
        Err(e) => return Err(e),
    };
    let resumed_at = w.status().offset;
    if resumed_at > size {
        w.truncate(0)?;
    }
    let resumed_at = w.status().offset;
    if resumed_at > 0 {
        let skipped = std::io::copy(&mut (&mut r).take(resumed_at), &mut std::io::sink())
            .context("skip the part already ingested")?;
        if skipped != resumed_at {
            return Err(err(
                ErrorKind::FailedPrecondition,
                format!("content for {ref_} ended at {skipped} bytes, before the {resumed_at} already ingested"),
            ));
        }
    }
    let want = size - resumed_at;
    let copied = std::io::copy(&mut (&mut r).take(want), &mut w).context("failed to copy")?;
    if copied != want {
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!(
                "unexpected commit size {}, expected {size}",
                resumed_at + copied
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).context("read past the expected size")? != 0 {
        // The source is not the blob: what was ingested is worthless for a retry.
        drop(w);
        let _ = store.abort(ref_);
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!("content for {ref_} is longer than the expected {size} bytes"),
        ));
    }
    w.flush()?;
    match w.commit(size, Some(digest)) {
        Ok(_) => Ok(Written::Committed { resumed_at }),
        Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => Ok(Written::AlreadyExists),
        Err(e) => {
            // A digest mismatch: the ingest holds wrong bytes somewhere; resuming it again
            // could never succeed, so the next attempt starts from scratch.
            if kind_of(&e) == ErrorKind::FailedPrecondition {
                let _ = store.abort(ref_);
            }
            Err(e)
        }
    }
}

/// Read a whole blob of at most `limit` bytes (a manifest, index or config).
pub fn read_blob(store: &Store, digest: &Digest, limit: u64) -> anyhow::Result<Vec<u8>> {
    let r = store.reader(digest)?;
    r.read_all(limit).with_context(|| format!("read {digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tests::TempDir;

    #[test]
    fn writes_resumes_and_refuses_wrong_lengths() {
        let t = TempDir::new("blobio");
        let s = Store::open(&t.0).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        // an interrupted ingest of the first 30000 bytes
        let mut w = s.writer("layer", data.len() as u64, Some(d)).unwrap();
        w.write_all(&data[..30_000]).unwrap();
        w.close().unwrap();
        let got = write_blob(&s, "layer", &data[..], data.len() as u64, d).unwrap();
        assert_eq!(got, Written::Committed { resumed_at: 30_000 });
        assert_eq!(read_blob(&s, &d, 1 << 20).unwrap(), data);
        assert_eq!(
            write_blob(&s, "again", &data[..], data.len() as u64, d).unwrap(),
            Written::AlreadyExists
        );
        assert!(read_blob(&s, &d, 10).is_err(), "over the limit");

        let other = b"short body".to_vec();
        let od = Digest::of(&other);
        let e = write_blob(&s, "short", &other[..5], other.len() as u64, od).unwrap_err();
        assert_eq!(kind_of(&e), ErrorKind::FailedPrecondition);
        let e = write_blob(
            &s,
            "long",
            &b"short body and more"[..],
            other.len() as u64,
            od,
        )
        .unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let e = write_blob(&s, "wrong", &b"shorT body"[..], other.len() as u64, od).unwrap_err();
        assert!(e.to_string().contains("unexpected commit digest"), "{e}");
        assert!(!s.blob_path(&od).exists());
        assert!(
            s.status("wrong").is_err() && s.status("long").is_err(),
            "bad ingests aborted"
        );
        // and a correct retry of the short ingest completes it
        assert_eq!(
            write_blob(&s, "short", &other[..], other.len() as u64, od).unwrap(),
            Written::Committed { resumed_at: 5 }
        );
    }
}
