//! Layer unpack: an image layer blob (gzip, zstd or plain tar) streamed into a directory
//! in one pass, with no temporary tarball: the blob is digested as it is read, decompressed,
//! the tar stream digested again (the diffID), and every entry applied through a confined
//! directory walk ([`safe_dir`]) that never follows a symlink and never leaves the target.
//!
//! Whiteouts are written in overlayfs' form (`.wh.NAME` → a 0:0 character device,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y`), so each layer's directory is an overlay
//! lower/upper as it stands. A layer is unpacked into a staging directory beside its
//! destination and renamed into place only when the whole stream was read and its digests
//! match; on any error the staging directory is removed and nothing is committed.
//!
//! Each layer has its own directory, so layers unpack in parallel ([`parallel`]); within
//! one layer, decompression runs on its own thread beside the tar reader ([`pipeline`]) and
//! small files are made by a few writer threads ([`file_writers`]).

pub mod apply;
pub mod decompress;
pub mod file_writers;
pub mod hashing_reader;
pub mod layer;
pub mod limits;
pub mod parallel;
pub mod pipeline;
pub mod safe_dir;

pub use decompress::Compression;
pub use layer::{unpack_layer, LayerInfo, UnpackOptions};
pub use limits::Limits;
pub use parallel::ParallelUnpack;
