//! What import and export need of a content store, as one trait: the daemon's own store
//! ([`NamespacedContent`], in process) and containerd's Content and Images services (the
//! ctl's adapter, `crate::ctl::api_store`) both carry it, so `ctr image import`/`export`
//! run the same code against ociboxd's database and against a remote containerd.
//!
//! Errors keep their errdefs kind (NotFound, AlreadyExists, FailedPrecondition): the
//! import decides on them.

use std::io::{Read, Write};

use crate::content::Digest;
use crate::errdefs::ErrorKind;
use crate::metadata::content::ContentRecord;
use crate::metadata::encoding::Labels;
use crate::metadata::images::{self, Image};
use crate::metadata::namespaced_content::NamespacedContent;
use anyhow::Result;

/// An open ingest: the bytes written so far, then a commit.
pub trait IngestWriter: Write {
    /// The digest of the bytes written so far.
    fn digest(&self) -> Digest;
    /// Commit `size` bytes as `expected` (when given) with `labels`. AlreadyExists when the
    /// store already holds the blob.
    fn commit(
        self: Box<Self>,
        size: u64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> Result<Digest>;
}

/// A content store and image records of one namespace.
pub trait ArchiveStore {
    /// An ingest for `ref_`, empty (what an earlier attempt left is started over); `None`
    /// when `expected` is given and the store already holds it.
    fn open_writer(
        &self,
        ref_: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Option<Box<dyn IngestWriter + '_>>>;
    /// Drop the ingest `ref_`.
    fn abort(&self, ref_: &str) -> Result<()>;
    /// The record of a blob; NotFound when the store does not hold it.
    fn info(&self, d: &Digest) -> Result<ContentRecord>;
    /// A whole blob, refused beyond `limit` bytes.
    fn read_all(&self, d: &Digest, limit: u64) -> Result<Vec<u8>>;
    /// A blob's bytes from the start.
    fn stream(&self, d: &Digest) -> Result<Box<dyn Read + Send + '_>>;
    /// Set labels of a blob (`paths` are `labels.<key>`).
    fn update_labels(&self, d: &Digest, labels: &Labels, paths: &[&str]) -> Result<()>;
    /// Every blob's record.
    fn walk(&self) -> Result<Vec<ContentRecord>>;
    /// An image record; NotFound when there is none.
    fn image(&self, name: &str) -> Result<Image>;
    /// Create the image records, or update the target of those that exist.
    fn record_images(&self, images: &[Image]) -> Result<Vec<Image>>;
}

struct LocalWriter<'a> {
    content: &'a NamespacedContent<'a>,
    w: crate::content::Writer,
}

impl Write for LocalWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl IngestWriter for LocalWriter<'_> {
    fn digest(&self) -> Digest {
        self.w.digest()
    }
    fn commit(
        self: Box<Self>,
        size: u64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> Result<Digest> {
        self.content.commit(self.w, size, expected, labels)
    }
}

impl ArchiveStore for NamespacedContent<'_> {
    fn open_writer(
        &self,
        ref_: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Option<Box<dyn IngestWriter + '_>>> {
        match self.writer(ref_, total, expected) {
            Ok(mut w) => {
                if w.status().offset > 0 {
                    w.truncate(0)?;
                }
                Ok(Some(Box::new(LocalWriter { content: self, w })))
            }
            Err(e)
                if crate::errdefs::kind_of(&e) == ErrorKind::AlreadyExists
                    && expected.is_some() =>
            {
                Ok(None)
            }
            Err(e) => Err(e.context(format!("failed to open writer for {ref_}"))),
        }
    }

    fn abort(&self, ref_: &str) -> Result<()> {
        NamespacedContent::abort(self, ref_)
    }

    fn info(&self, d: &Digest) -> Result<ContentRecord> {
        NamespacedContent::info(self, d)
    }

    fn read_all(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        self.reader(d)?.read_all(limit)
    }

    fn stream(&self, d: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.reader(d)?.stream_from(0)?))
    }

    fn update_labels(&self, d: &Digest, labels: &Labels, paths: &[&str]) -> Result<()> {
        self.update(d, labels, paths).map(|_| ())
    }

    fn walk(&self) -> Result<Vec<ContentRecord>> {
        NamespacedContent::walk(self, &[])
    }

    fn image(&self, name: &str) -> Result<Image> {
        self.db.view(|v| images::get(v, &self.ns, name))
    }

    fn record_images(&self, list: &[Image]) -> Result<Vec<Image>> {
        self.db.update(|tx| {
            let mut out = Vec::new();
            for i in list {
                let rec = if images::get(tx, &self.ns, &i.name).is_ok() {
                    images::update(tx, &self.ns, i.clone(), &["target"])?
                } else {
                    images::create(tx, &self.ns, i.clone())?
                };
                out.push(rec);
            }
            Ok(out)
        })
    }
}
