//! One layer: blob stream → digest → decompress → digest (diffID) → untar, into a staging
//! directory beside the destination that is renamed into place only on success.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

use super::apply::apply_entries;
use super::decompress::Compression;
use super::hashing_reader::HashingReader;
use super::limits::Limits;
use super::pipeline::{decode_beside, Decoded};
use super::safe_dir::SafeDir;
use crate::content::Digest;

/// What to expect of a layer and how far to trust it.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub compression: Compression,
    /// The diffID from the image config: a mismatch refuses the layer.
    pub expected_diff_id: Option<Digest>,
    /// The blob digest from the manifest, when the caller has not verified it already.
    pub expected_digest: Option<Digest>,
    /// Digest the blob as it is read (always, when `expected_digest` is set). Off where
    /// someone else hashes the same bytes already, so they are not hashed twice: a download
    /// tee'd into its ingest (the content store's writer digests what it writes and checks
    /// it at commit), or a blob read from the content store (its name was checked when it
    /// was committed). Then [`LayerInfo::digest`] is None.
    pub digest_blob: bool,
    pub limits: Limits,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            compression: Compression::Auto,
            expected_diff_id: None,
            expected_digest: None,
            digest_blob: true,
            limits: Limits::default(),
        }
    }
}

/// What one unpack found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest (unless [`UnpackOptions::digest_blob`] is off) and size of the blob as read
    /// (compressed).
    pub digest: Option<Digest>,
    pub size: u64,
    /// Digest and size of the uncompressed tar stream.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub entries: u64,
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

/// Unpack the layer read from `blob` so that `dest` (which must not exist) holds it. On
/// any error, `dest` does not exist afterwards and no staging directory is left.
pub fn unpack_layer<R: Read + Send>(
    blob: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<LayerInfo> {
    if dest.symlink_metadata().is_ok() {
        bail!("unpack into {}: already exists", dest.display());
    }
    let staging = staging_path(dest)?;
    std::fs::create_dir(&staging)
        .with_context(|| format!("create staging directory {}", staging.display()))?;
    let result = unpack_into(blob, &staging, opts).and_then(|info| {
        std::fs::rename(&staging, dest)
            .with_context(|| format!("rename {} to {}", staging.display(), dest.display()))?;
        Ok(info)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// `<parent>/.<name>.unpack-<pid>-<n>`: on the same filesystem as `dest`, so the commit is
/// one rename.
fn staging_path(dest: &Path) -> Result<PathBuf> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        bail!("unpack into {}: no parent directory", dest.display());
    };
    let n = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(parent.join(format!(
        ".{}.unpack-{}-{n}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Unpack into an existing (empty) directory and verify; the caller cleans up on error.
/// Decompression runs on a thread of its own beside the tar apply ([`decode_beside`]).
pub fn unpack_into<R: Read + Send>(
    blob: R,
    target: &Path,
    opts: &UnpackOptions,
) -> Result<LayerInfo> {
    let dir = SafeDir::open(target)?;
    let (entries, decoded) = decode_beside(
        blob,
        opts.digest_blob || opts.expected_digest.is_some(),
        opts.compression,
        opts.limits.max_uncompressed_bytes,
        |stream| {
            let budget = Rc::new(Cell::new(opts.limits.max_header_bytes));
            let tar_stream = HashingReader::counting(stream).with_budget(budget.clone());
            let mut archive = tar::Archive::new(tar_stream);
            let entries = apply_entries(&mut archive, &dir, &opts.limits, &budget)?;
            // The diffID covers the whole tar stream, padding after the end blocks included.
            budget.set(u64::MAX);
            let mut tar_stream = archive.into_inner();
            io::copy(&mut tar_stream, &mut io::sink())
                .context("read layer after its end of archive")?;
            Ok(entries)
        },
    )?;
    let Decoded {
        digest,
        size,
        diff_id,
        uncompressed_size,
    } = decoded;

    if let (Some(want), Some(digest)) = (&opts.expected_digest, &digest) {
        if want != digest {
            bail!("unexpected commit digest {digest}, expected {want}: failed precondition");
        }
    }
    if let Some(want) = &opts.expected_diff_id {
        if *want != diff_id {
            bail!("wrong diff id calculated on extraction {want:?} (got {diff_id})");
        }
    }
    Ok(LayerInfo {
        digest,
        size,
        diff_id,
        uncompressed_size,
        entries,
    })
}
