//! The layer compressions OCI and Docker images use: gzip (flate2 on zlib-rs), zstd
//! (libzstd, statically linked) and none. Known by media type or sniffed from the magic.

use std::io::{self, BufRead, Read};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Sniff the first bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar.
    Auto,
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names (OCI, Docker schema 2, and their
    /// non-distributable/foreign variants).
    pub fn from_media_type(media_type: &str) -> Result<Compression> {
        let base = media_type.split(';').next().unwrap_or("").trim();
        Ok(match base {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            // Docker's own uncompressed form is sniffed: old pushes label gzip data so.
            "application/vnd.docker.image.rootfs.diff.tar" => Compression::Auto,
            _ => bail!("unsupported layer media type {media_type:?}"),
        })
    }

    /// Resolve [`Compression::Auto`] from the stream's first bytes.
    pub fn sniff<R: BufRead>(self, r: &mut R) -> Result<Compression> {
        if self != Compression::Auto {
            return Ok(self);
        }
        let head = r.fill_buf().context("read layer")?;
        Ok(if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        })
    }
}

/// A decompressing reader over a buffered blob reader, which [`Decompressor::into_inner`]
/// gives back so the caller can digest what follows the compressed stream.
pub enum Decompressor<R: BufRead> {
    Plain(R),
    // Boxed: the inflate state is a few hundred bytes, the others a pointer or two.
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decompressor<R> {
    pub fn new(c: Compression, r: R) -> Result<Self> {
        Ok(match c {
            Compression::None | Compression::Auto => Decompressor::Plain(r),
            Compression::Gzip => {
                Decompressor::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
            }
            Compression::Zstd => Decompressor::Zstd(
                zstd::stream::read::Decoder::with_buffer(r).context("start zstd decoder")?,
            ),
        })
    }

    pub fn into_inner(self) -> R {
        match self {
            Decompressor::Plain(r) => r,
            Decompressor::Gzip(d) => d.into_inner(),
            Decompressor::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::Plain(r) => r.read(buf),
            Decompressor::Gzip(d) => d.read(buf),
            Decompressor::Zstd(d) => d.read(buf),
        }
    }
}
