//! A reader that hands the tar parser at most what the current entry may take: its data
//! (padded to a block) plus a fixed allowance for the headers before the next entry (PAX
//! records, GNU long names), which the parser buffers in memory. An archive whose headers
//! claim more is refused instead of filling memory.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Bytes of headers (ustar blocks, PAX records, GNU long names) allowed before one entry.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The budget, shared between the reader (inside the tar parser) and the importer.
#[derive(Clone, Debug)]
pub struct Budget(Rc<Cell<u64>>);

impl Budget {
    /// A budget for the first entry's headers.
    pub fn new() -> Budget {
        Budget(Rc::new(Cell::new(MAX_HEADER_BYTES)))
    }

    /// Refill for an entry of `size` data bytes and the headers after it.
    pub fn refill_for(&self, size: u64) {
        self.0
            .set(size.saturating_add(511).saturating_add(MAX_HEADER_BYTES));
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new()
    }
}

/// `inner`, failing a read once the budget is spent.
pub struct BudgetReader<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> BudgetReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, budget: Budget) -> Self {
        BudgetReader { inner, budget }
    }
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.0.get();
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("archive headers exceed the limit of {MAX_HEADER_BYTES} bytes"),
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.0.set(left - n as u64);
        Ok(n)
    }
}
