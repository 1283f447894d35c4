//! Limits against decompression bombs and absurd headers. A layer that passes one is
//! refused with an error naming the limit; nothing of it is committed.

/// Bounds on one layer's tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the uncompressed tar stream (headers and data).
    pub max_uncompressed_bytes: u64,
    /// Tar entries, extension headers included.
    pub max_entries: u64,
    /// Bytes the tar reader may consume for one entry's headers (ustar block, PAX records,
    /// GNU long names and sparse maps), which it buffers in memory.
    pub max_header_bytes: u64,
    /// Bytes of an entry's path or link target.
    pub max_path_bytes: usize,
    /// Bytes of one extended attribute value (the kernel's own maximum is 64 KiB).
    pub max_xattr_bytes: usize,
    /// Extended attributes of one entry.
    pub max_xattrs: usize,
}

impl Default for Limits {
    /// Generous for real images (the largest public layers are a few GiB and a few hundred
    /// thousand files), tight enough that a small blob cannot fill a disk or memory.
    fn default() -> Self {
        Limits {
            max_uncompressed_bytes: 64 << 30,
            max_entries: 4 << 20,
            max_header_bytes: 1 << 20,
            max_path_bytes: 4096,
            max_xattr_bytes: 64 << 10,
            max_xattrs: 128,
        }
    }
}
