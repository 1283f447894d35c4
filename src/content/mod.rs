//! The content store: blobs addressed by digest, written through resumable, verified
//! ingests, in containerd's `content/local` on-disk layout.
//!
//! - [`digest`]: the `sha256:<hex>` digest type and a streaming digester;
//! - [`store`]: the store (info, read, walk, delete, ingest statuses, abort, writers);
//! - [`writer`]: one write transaction and its crash-safe commit;
//! - [`reader`]: reading a blob at an offset;
//! - [`blob_io`]: whole-blob write (resuming) and read, as containerd's `WriteBlob`/`ReadBlob`;
//! - [`ingest`], [`locks`]: the ingest directory's files (times in [`crate::timefmt`]'s
//!   Go format) and one writer per ref.

pub mod blob_io;
pub mod digest;
pub mod ingest;
pub mod locks;
pub mod reader;
pub mod store;
pub mod writer;

pub use blob_io::{read_blob, write_blob, Written};
pub use digest::{Digest, Digester};
pub use reader::Reader;
pub use store::{Info, Status, Store};
pub use writer::Writer;

#[cfg(test)]
pub(crate) mod tests;
