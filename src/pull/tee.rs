//! The reader a streaming layer unpack consumes: first what the layer's ingest already holds
//! (a download resumed after a kill), then the registry's body from there on, every new
//! byte also written into the ingest as it passes, so one pass over the network both fills
//! the content store and feeds decompress → diffID → untar. No tarball is written.
//!
//! It remembers whether a failure came from its own side (the network, the ingest file, a
//! cancellation): then the ingest is good as far as it goes and is kept for the next pull to
//! resume; any other failure of the unpack is the content's fault, and the ingest is dropped.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::content::Writer;
use crate::image::Descriptor;
use crate::pull::fetch::event;
use crate::pull::progress::{ProgressFn, ProgressStatus};
use crate::registry::blob_reader::BlobReader;

/// Progress is reported each time this many more bytes arrived (and at the end).
const REPORT_EVERY: u64 = 256 << 10;

pub(crate) struct TeeToIngest<'a> {
    pub prefix: Option<io::Take<std::fs::File>>,
    pub body: Option<BlobReader>,
    pub writer: Writer,
    pub offset: u64,
    pub desc: &'a Descriptor,
    pub cancel: &'a AtomicBool,
    pub progress: ProgressFn<'a>,
    /// A read or write failed on this side (not the content's fault).
    pub source_failed: bool,
    reported: u64,
}

impl<'a> TeeToIngest<'a> {
    pub fn new(
        prefix: Option<io::Take<std::fs::File>>,
        body: Option<BlobReader>,
        writer: Writer,
        desc: &'a Descriptor,
        cancel: &'a AtomicBool,
        progress: ProgressFn<'a>,
    ) -> Self {
        let offset = writer.status().offset;
        TeeToIngest {
            prefix,
            body,
            writer,
            offset,
            desc,
            cancel,
            progress,
            source_failed: false,
            reported: offset,
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.source_failed = true;
        e
    }
}

impl Read for TeeToIngest<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(self.fail(io::Error::other(
                "cancelled after another layer of the pull failed",
            )));
        }
        if let Some(p) = &mut self.prefix {
            match p.read(buf) {
                Ok(0) => self.prefix = None,
                Ok(n) => return Ok(n),
                Err(e) => return Err(self.fail(e)),
            }
        }
        let Some(body) = &mut self.body else {
            return Ok(0);
        };
        let n = match body.read(buf) {
            Ok(n) => n,
            Err(e) => return Err(self.fail(e)),
        };
        if n == 0 {
            return Ok(0);
        }
        if let Err(e) = self.writer.write_all(&buf[..n]) {
            return Err(self.fail(e));
        }
        self.offset += n as u64;
        if self.offset - self.reported >= REPORT_EVERY || self.offset == self.desc.size {
            self.reported = self.offset;
            event(
                self.progress,
                self.desc,
                ProgressStatus::Downloading,
                self.offset,
            );
        }
        Ok(n)
    }
}
