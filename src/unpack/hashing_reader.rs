//! A reader that digests (sha256) and counts what passes through it, with an optional cap
//! on the total and an optional per-step budget the consumer refills (used to bound what
//! the tar reader buffers for one entry's headers).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use crate::content::Digest;

pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: Option<(u64, &'static str)>,
    budget: Option<Rc<Cell<u64>>>,
    hash: bool,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit: None,
            budget: None,
            hash: true,
        }
    }

    /// Count (and apply limit and budget) without digesting: for a stream digested
    /// elsewhere already.
    pub fn counting(inner: R) -> Self {
        HashingReader {
            hash: false,
            ..HashingReader::new(inner)
        }
    }

    /// Fail a read once more than `max` bytes came through; `what` names the stream.
    pub fn with_limit(mut self, max: u64, what: &'static str) -> Self {
        self.limit = Some((max, what));
        self
    }

    /// Fail a read that would take more than `budget` holds; each read takes from it.
    pub fn with_budget(mut self, budget: Rc<Cell<u64>>) -> Self {
        self.budget = Some(budget);
        self
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The digest and byte count of everything read, and the inner reader.
    pub fn finish(self) -> (Digest, u64, R) {
        let digest = Digest::from_bytes(self.hasher.finalize().into());
        (digest, self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = buf.len();
        if let Some(b) = &self.budget {
            let left = b.get();
            if left == 0 && want > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "tar header exceeds the header size limit",
                ));
            }
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..want])?;
        if self.hash {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        if let Some(b) = &self.budget {
            b.set(b.get().saturating_sub(n as u64));
        }
        if let Some((max, what)) = self.limit {
            if self.count > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{what} exceeds the limit of {max} bytes"),
                ));
            }
        }
        Ok(n)
    }
}
