//! `ctr image import` (containerd 1.6's `archive.ImportIndex` + `client.Import`): read an
//! OCI image-layout tar or a `docker save` tar once, front to back, each file streamed into
//! a content ingest as it passes (no temporary copy of the archive or of a layer), then
//! name the images its index lists.
//!
//! 1. Every entry's name is checked first ([`super::entry_names`]): absolute names, `..`,
//!    and names that are not the layout's are refused; so are hard links, devices, fifos
//!    and symlinks (except a docker `<id>/layer.tar` pointing at another layer file, which
//!    `docker save` writes for shared layers and skopeo for every layer). `oci-layout`, `index.json`,
//!    `manifest.json` are read into memory up to a limit; every other file goes to the
//!    store. A `blobs/sha256/<hex>` blob must hash to its name, or it is refused and its
//!    ingest aborted; docker files are stored under the digest their bytes have.
//! 2. An OCI layout (`oci-layout` present; it wins over a `manifest.json` beside it, as in
//!    an archive `ctr export` wrote) is imported as its `index.json`. A docker archive gets
//!    Docker schema 2 manifests and an index made for it ([`super::docker_save`]).
//! 3. The index is walked as containerd's import walks it: top-level entries are named
//!    ([`super::image_names`]); manifests of other platforms than the matcher wants are
//!    not followed; every manifest and index walked gets the `containerd.io/gc.ref.content.*`
//!    labels of the children followed. Each blob walked must be in the store.
//! 4. The image records are created (or their target updated) in one transaction.
//!
//! Everything is written under a lease (the caller's, or one made for the import and
//! deleted at its end, as ctr's `WithLease` does): until the image records exist the
//! blobs are held only by it. A failure leaves no image record; blobs it had stored are
//! held by nothing and go at the next garbage collection, and no ingest is left behind.
//!
//! With `compress_blobs` (`--compress-blobs`) plain docker layers are stored gzip'd too and
//! the manifest names those ([`super::compress_layer`]). Not done here: the unpack
//! `ctr import` does after the import (the caller unpacks the images returned).

use crate::content::Digest;
use crate::errdefs::{kind_of, ErrorKind};
use crate::image::descriptor::Descriptor;
use crate::image::manifest::{
    parse_manifest_or_index, ManifestOrIndex, MAX_CONFIG_SIZE, MAX_INDEX_DEPTH, MAX_MANIFEST_SIZE,
};
use crate::image::media_types::{self, Compression, Kind};
use crate::image::Matcher;
use crate::metadata::encoding::Labels;
use crate::metadata::images::{Image, Target};
use crate::metadata::namespaced_content::NamespacedContent;
use crate::metadata::temp_lease::with_leased_content;
use crate::pull::gc_labels::children_labels;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};
use tar::EntryType;

use super::compress_layer;
use super::docker_save::{self, DockerImage};
use super::entry_names::{classify, docker_layer_link, docker_reference, EntryName};
use super::header_budget::{Budget, BudgetReader};
use super::image_names::Naming;
use super::store::{ArchiveStore, IngestWriter};

/// Largest `index.json`, `manifest.json` or `oci-layout` read (they are held in memory).
pub const MAX_INDEX_JSON: u64 = MAX_MANIFEST_SIZE;
/// Most entries one archive may have.
pub const MAX_ENTRIES: u64 = 1 << 20;
/// The OCI image layout version this reads (`oci-layout`'s `imageLayoutVersion`).
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

const CHUNK: usize = 256 << 10;

/// What to import and how to name it (`ctr image import` flags).
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// `--base-name`, `--digests`, `--skip-digest-for-named`.
    pub naming: Naming,
    /// `--index-name`: also keep the index as an image of this name.
    pub index_name: Option<String>,
    /// Which manifests of an index are followed: the host default, `--platform`
    /// ([`Matcher::only`]) or `--all-platforms` ([`Matcher::All`]).
    pub platforms: Matcher,
    /// Labels of the image records created.
    pub image_labels: Labels,
    /// `--compress-blobs`: gzip plain docker layers (docker archives only).
    pub compress_blobs: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            naming: Naming::default_for_today(),
            index_name: None,
            platforms: Matcher::default_for_host(),
            image_labels: Labels::new(),
            compress_blobs: false,
        }
    }
}

/// What an import made.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The index the archive was imported as (its `index.json`, or the one made for a
    /// docker archive).
    pub index: Descriptor,
    /// The image records, in the order ctr creates them.
    pub images: Vec<Image>,
}

/// A file of the archive now in the store.
#[derive(Clone, Copy, Debug)]
struct Stored {
    digest: Digest,
    size: u64,
    compression: Compression,
}

/// What the pass over the tar found.
#[derive(Default)]
struct Scan {
    layout_version: Option<String>,
    index_json: Option<Vec<u8>>,
    manifest_json: Option<Vec<u8>>,
    /// Cleaned name → stored file.
    files: HashMap<String, Stored>,
    /// Docker layer symlinks: name → target name.
    links: Vec<(String, String)>,
}

/// Import the archive `r` into `content` (see the module doc).
pub fn import(content: &NamespacedContent, r: impl Read, opts: &ImportOptions) -> Result<Imported> {
    match &content.lease {
        Some(_) => import_to(content, r, opts),
        None => with_leased_content(content, "import", |leased, _| import_to(leased, r, opts)),
    }
}

/// Import the archive `r` into `content`, any store ([`ArchiveStore`]): the caller holds
/// the lease the import runs under (ctr's `WithLease`).
pub fn import_to(
    content: &dyn ArchiveStore,
    r: impl Read,
    opts: &ImportOptions,
) -> Result<Imported> {
    let scan = scan(content, r)?;
    let index = if let Some(v) = &scan.layout_version {
        if v != IMAGE_LAYOUT_VERSION {
            bail!("unsupported OCI version {v}");
        }
        let Some(ix) = &scan.index_json else {
            bail!("missing index.json in OCI layout {IMAGE_LAYOUT_VERSION}");
        };
        put_bytes(content, media_types::OCI_INDEX, ix)?
    } else if let Some(m) = &scan.manifest_json {
        docker_index(
            content,
            &scan,
            &docker_save::parse_manifest_json(m)?,
            opts.compress_blobs,
        )?
    } else {
        bail!("unrecognized image format: the archive has neither oci-layout nor manifest.json");
    };
    let images = walk_and_name(content, &index, opts)?;
    content
        .record_images(&images)
        .context("record the imported images")
        .map(|images| Imported { index, images })
}

/// The one pass over the tar.
fn scan(content: &dyn ArchiveStore, r: impl Read) -> Result<Scan> {
    let budget = Budget::new();
    let mut archive = tar::Archive::new(BudgetReader::new(r, budget.clone()));
    let mut scan = Scan::default();
    let mut count = 0u64;
    for entry in archive.entries().context("read the archive")? {
        let mut entry = entry.context("read the archive: bad or truncated tar header")?;
        count += 1;
        if count > MAX_ENTRIES {
            bail!("the archive has more than {MAX_ENTRIES} entries");
        }
        let size = entry.size();
        budget.refill_for(size);
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => {
                classify(&raw, true)?;
            }
            EntryType::XGlobalHeader => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let to = docker_layer_link(&shown, &target)?;
                let from = docker_reference(&shown).unwrap_or(shown);
                scan.links.push((from, to));
            }
            EntryType::Regular | EntryType::Continuous => {
                let name = classify(&raw, false)?;
                read_file(content, &mut scan, &mut entry, &shown, name, size)
                    .with_context(|| format!("failed to ingest {shown:?}"))?;
            }
            other => bail!(
                "archive entry {shown:?} is a {}; an image archive holds only files and directories",
                type_name(other)
            ),
        }
    }
    Ok(scan)
}

fn type_name(t: EntryType) -> &'static str {
    match t {
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        _ => "special entry",
    }
}

/// Read a small JSON file whole, refusing one over `limit` by its header before reading.
fn read_small(entry: &mut impl Read, name: &str, size: u64, limit: u64) -> Result<Vec<u8>> {
    if size > limit {
        bail!("{name} is {size} bytes, over the limit of {limit} bytes");
    }
    let mut out = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut out)?;
    if (out.len() as u64) < size {
        bail!(
            "archive truncated: {name} has {} of its {size} bytes",
            out.len()
        );
    }
    Ok(out)
}

fn read_file(
    content: &dyn ArchiveStore,
    scan: &mut Scan,
    entry: &mut impl Read,
    shown: &str,
    name: EntryName,
    size: u64,
) -> Result<()> {
    match name {
        EntryName::OciLayout => {
            #[derive(serde::Deserialize)]
            struct Layout {
                #[serde(rename = "imageLayoutVersion", default)]
                version: String,
            }
            let data = read_small(entry, "oci-layout", size, MAX_INDEX_JSON)?;
            let l: Layout = serde_json::from_slice(&data).context("untar oci layout")?;
            scan.layout_version = Some(l.version);
        }
        EntryName::IndexJson => {
            scan.index_json = Some(read_small(entry, "index.json", size, MAX_INDEX_JSON)?);
        }
        EntryName::ManifestJson => {
            scan.manifest_json = Some(read_small(entry, "manifest.json", size, MAX_INDEX_JSON)?);
        }
        EntryName::Repositories | EntryName::DockerV1Meta => {
            let n = std::io::copy(&mut entry.take(size), &mut std::io::sink())?;
            if n < size {
                bail!("archive truncated: {shown:?} has {n} of its {size} bytes");
            }
        }
        EntryName::Blob(d) => {
            let key = format!("blobs/sha256/{}", d.encoded());
            let stored = ingest(content, entry, &format!("tar-{key}"), size, Some(d))?;
            scan.files.insert(key, stored);
        }
        EntryName::DockerFile(n) => {
            if n.ends_with(".json") && size > MAX_CONFIG_SIZE {
                bail!("{n} is {size} bytes, over the limit of {MAX_CONFIG_SIZE} bytes");
            }
            let stored = ingest(content, entry, &format!("tar-{n}"), size, None)?;
            scan.files.insert(n, stored);
        }
        EntryName::Directory => {}
    }
    Ok(())
}

/// Stream `size` bytes of `entry` into the ingest `ref_` and commit them (as `expected`
/// when given). An ingest left by an earlier attempt is started over (a tar stream cannot
/// skip what it already has). Bytes that do not match are refused and the ingest aborted.
fn ingest(
    content: &dyn ArchiveStore,
    entry: &mut impl Read,
    ref_: &str,
    size: u64,
    expected: Option<Digest>,
) -> Result<Stored> {
    let mut w = open_writer(content, ref_, size, expected)?;
    let copied = match w.as_mut() {
        Some(w) => copy_entry(entry, Some(w.as_mut() as &mut dyn Write), size),
        None => copy_entry(entry, None, size),
    };
    let head = match copied {
        Ok(h) => h,
        Err(e) => {
            if let Some(w) = w.take() {
                drop(w);
                let _ = content.abort(ref_);
            }
            return Err(e);
        }
    };
    let compression = docker_save::sniff_compression(&head);
    let digest = match (w, expected) {
        (None, Some(d)) => d,
        (None, None) => bail!("the content store reported an unnamed blob as existing"),
        (Some(w), _) => {
            let got = w.digest();
            let want = expected.unwrap_or(got);
            match w.commit(size, Some(want), Labels::new()) {
                Ok(d) => d,
                Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => want,
                Err(e) => {
                    let _ = content.abort(ref_);
                    if kind_of(&e) == ErrorKind::FailedPrecondition {
                        return Err(anyhow!(
                            "blob {want} does not match its name in the archive: its bytes are {got}"
                        )
                        .context(e));
                    }
                    return Err(e);
                }
            }
        }
    };
    Ok(Stored {
        digest,
        size,
        compression,
    })
}

/// Copy `size` bytes of `entry` to `w` (or past, without a writer); its first bytes (the
/// compression magic) are returned.
fn copy_entry(entry: &mut impl Read, mut w: Option<&mut dyn Write>, size: u64) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < size {
        let want = usize::try_from(size - done)
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let n = entry.read(&mut buf[..want]).context("read the archive")?;
        if n == 0 {
            bail!("archive truncated: the entry has {done} of its {size} bytes");
        }
        if head.len() < 4 {
            let k = (4 - head.len()).min(n);
            head.extend_from_slice(&buf[..k]);
        }
        if let Some(w) = w.as_mut() {
            w.write_all(&buf[..n]).context("write the ingest")?;
        }
        done += n as u64;
    }
    Ok(head)
}

/// A writer, or None when the namespace already holds `expected` (then the entry's bytes
/// are only read past). A leftover ingest is emptied.
fn open_writer<'a>(
    content: &'a dyn ArchiveStore,
    ref_: &str,
    size: u64,
    expected: Option<Digest>,
) -> Result<Option<Box<dyn IngestWriter + 'a>>> {
    content.open_writer(ref_, size, expected)
}

/// Store bytes made here (an index, a manifest) and describe them.
fn put_bytes(content: &dyn ArchiveStore, media_type: &str, data: &[u8]) -> Result<Descriptor> {
    let d = docker_save::descriptor_of(media_type, data);
    let ref_ = format!("manifest-{}", d.digest);
    if let Some(mut w) = open_writer(content, &ref_, d.size, Some(d.digest))? {
        w.write_all(data).context("write the ingest")?;
        match w.commit(d.size, Some(d.digest), Labels::new()) {
            Ok(_) => {}
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {}
            Err(e) => {
                let _ = content.abort(&ref_);
                return Err(e.context(format!("failed commit on ref \"{ref_}\"")));
            }
        }
    }
    Ok(d)
}

/// containerd's docker branch of `ImportIndex`.
fn docker_index(
    content: &dyn ArchiveStore,
    scan: &Scan,
    images: &[DockerImage],
    compress_blobs: bool,
) -> Result<Descriptor> {
    let mut files = scan.files.clone();
    for (from, to) in &scan.links {
        let Some(s) = files.get(to).copied() else {
            bail!("no target for symlink layer from {from:?} to {to:?}");
        };
        files.insert(from.clone(), s);
    }
    let lookup = |name: &str, what: &str| -> Result<Stored> {
        docker_reference(name)
            .and_then(|n| files.get(&n).copied())
            .ok_or_else(|| anyhow!("{what} {name:?} not found"))
    };
    let mut compressed = compress_layer::labelled(content)?;
    let mut entries = Vec::new();
    for img in images {
        let c = lookup(&img.config, "image config")?;
        let config = Descriptor::new(media_types::DOCKER_CONFIG, c.digest, c.size);
        let mut layers = Vec::new();
        for l in img.layers.as_deref().unwrap_or_default() {
            let s = lookup(l, "layer").context("failed to resolve layers")?;
            let compressed = match compressed.get(&s.digest) {
                Some(c) => Some(*c),
                None if compress_blobs && s.compression == Compression::Uncompressed => {
                    let c = compress_layer::compress(content, &s.digest, s.size)?;
                    compressed.insert(s.digest, c);
                    Some(c)
                }
                None => None,
            };
            if let Some((digest, size)) = compressed {
                layers.push(Descriptor::new(
                    media_types::DOCKER_LAYER_GZIP,
                    digest,
                    size,
                ));
                continue;
            }
            layers.push(Descriptor::new(
                docker_save::layer_media_type(s.compression),
                s.digest,
                s.size,
            ));
        }
        let bytes = docker_save::schema2_manifest(&config, &layers)?;
        let mut desc = put_bytes(content, media_types::DOCKER_MANIFEST, &bytes)
            .context("write docker manifest")?;
        let config_bytes = content
            .read_all(&config.digest, MAX_CONFIG_SIZE)
            .with_context(|| format!("read image config {}", img.config))?;
        desc.platform = docker_save::config_platform(&config_bytes)
            .with_context(|| format!("unable to resolve platform of {}", img.config))?;
        entries.extend(docker_save::index_entries(
            &desc,
            img.repo_tags.as_deref().unwrap_or_default(),
        )?);
    }
    let ix = docker_save::oci_index(&entries)?;
    put_bytes(content, media_types::OCI_INDEX, &ix)
}

/// containerd's import walk (see the module doc, step 3): the images to record.
fn walk_and_name(
    content: &dyn ArchiveStore,
    index: &Descriptor,
    opts: &ImportOptions,
) -> Result<Vec<Image>> {
    let mut images: Vec<Image> = Vec::new();
    if let Some(n) = &opts.index_name {
        images.push(image_of(n, index, &opts.image_labels));
    }
    let mut any_children = false;
    let mut stack: Vec<(Descriptor, usize)> = vec![(index.clone(), 0)];
    while let Some((d, depth)) = stack.pop() {
        if depth > MAX_INDEX_DEPTH {
            bail!(
                "indexes nested deeper than {MAX_INDEX_DEPTH} levels at {}",
                d.digest
            );
        }
        let children = children(content, &d)?;
        if depth == 0 {
            for m in &children {
                for name in opts.naming.names_for(&m.annotations, &m.digest) {
                    images.push(image_of(&name, m, &opts.image_labels));
                }
            }
        }
        let kept: Vec<Descriptor> = children
            .into_iter()
            .filter(|c| {
                c.platform
                    .as_ref()
                    .is_none_or(|p| opts.platforms.matches(p))
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        any_children = true;
        let labels = children_labels(&kept);
        let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        content
            .update_labels(&d.digest, &labels, &paths)
            .with_context(|| format!("set the labels of {}", d.digest))?;
        for c in kept.into_iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    if !any_children {
        bail!("image might be filtered out");
    }
    Ok(images)
}

fn image_of(name: &str, target: &Descriptor, labels: &Labels) -> Image {
    Image {
        name: name.to_owned(),
        target: Target {
            media_type: target.media_type.clone(),
            digest: target.digest,
            size: target.size,
            annotations: target.annotations.clone(),
        },
        labels: labels.clone(),
        created_at: 0,
        updated_at: 0,
    }
}

/// A walked blob's children (none for configs and layers, which need only be present).
fn children(content: &dyn ArchiveStore, d: &Descriptor) -> Result<Vec<Descriptor>> {
    let foreign = matches!(
        media_types::kind(&d.media_type),
        Kind::Layer {
            non_distributable: true,
            ..
        }
    );
    if foreign && content.info(&d.digest).is_err() {
        // Foreign layers are fetched from their URLs, not carried in archives.
        return Ok(Vec::new());
    }
    let info = content.info(&d.digest).map_err(|_| {
        anyhow!(
            "{} {} is referenced but not in the archive",
            kind_word(&d.media_type),
            d.digest
        )
    })?;
    if info.size != d.size {
        bail!(
            "{} {} is {} bytes in the archive, its descriptor says {}",
            kind_word(&d.media_type),
            d.digest,
            info.size,
            d.size
        );
    }
    if !media_types::is_manifest_or_index(&d.media_type) {
        return Ok(Vec::new());
    }
    let data = content
        .read_all(&d.digest, MAX_MANIFEST_SIZE)
        .with_context(|| format!("read {}", d.digest))?;
    let mut out = Vec::new();
    match parse_manifest_or_index(&d.media_type, &data)
        .with_context(|| format!("{} {}", kind_word(&d.media_type), d.digest))?
    {
        ManifestOrIndex::Index(ix) => {
            for m in ix.manifests() {
                out.push(
                    Descriptor::from_oci(m)
                        .with_context(|| format!("a manifest of index {}", d.digest))?,
                );
            }
        }
        ManifestOrIndex::Manifest(m) => {
            out.push(
                Descriptor::from_oci(m.config())
                    .with_context(|| format!("the config of manifest {}", d.digest))?,
            );
            for l in m.layers() {
                out.push(
                    Descriptor::from_oci(l)
                        .with_context(|| format!("a layer of manifest {}", d.digest))?,
                );
            }
        }
    }
    Ok(out)
}

fn kind_word(media_type: &str) -> &'static str {
    match media_types::kind(media_type) {
        Kind::Index => "index",
        Kind::Manifest => "manifest",
        Kind::Config => "config",
        Kind::Layer { .. } => "layer",
        _ => "blob",
    }
}
