//! `ctr image export` (containerd 1.6's `archive.Export`): one or more images written as an
//! OCI image-layout tar, streamed from the content store, with what containerd puts in it:
//!
//! - `oci-layout` (`{"imageLayoutVersion":"1.0.0"}`) and `index.json` listing each image's
//!   target with `io.containerd.image.name` = the image name and
//!   `org.opencontainers.image.ref.name` = its tag;
//! - `blobs/sha256/<hex>` for everything the targets reach: an index and the manifests of
//!   the platforms wanted (`--platform`, the host's exactly by default), or of all
//!   (`--all-platforms`), with their configs and layers;
//! - unless `--skip-manifest-json`, the Docker-compatible `manifest.json` (config and layer
//!   paths, familiar `RepoTags`) for one manifest per image: the best platform match.
//!
//! Entries are sorted by name, as containerd writes them. Every blob is checked to be in
//! the store before the first byte is written, and each is digested while it is copied: a
//! blob whose bytes changed on disk fails the export ("unexpected digest").

use crate::content::Digest;
use crate::image::descriptor::Descriptor;
use crate::image::manifest::{
    parse_index, parse_manifest, parse_manifest_or_index, MAX_INDEX_DEPTH, MAX_MANIFEST_SIZE,
};
use crate::image::media_types::{self, Kind};
use crate::image::{Matcher, Platform};
use crate::metadata::namespaced_content::NamespacedContent;

use super::store::ArchiveStore;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::image_names::{
    familiar_repo_tag, oci_reference_name, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};

/// `ctr image export` flags.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// `--platform` (an ordered matcher); ctr's default is the host platform strictly.
    pub platforms: Matcher,
    /// `--all-platforms`: every manifest of an index (all must be in the store).
    pub all_platforms: bool,
    /// `--skip-manifest-json`.
    pub skip_manifest_json: bool,
    /// `--skip-non-distributable`: leave out foreign layers.
    pub skip_non_distributable: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            platforms: Matcher::only_strict(&Platform::host()),
            all_platforms: false,
            skip_manifest_json: false,
            skip_non_distributable: false,
        }
    }
}

/// One tar entry to write.
enum Record {
    Dir,
    Bytes(Vec<u8>, u32),
    Blob(Box<Descriptor>),
}

struct DockerManifest {
    manifest: Descriptor,
    names: Vec<String>,
}

/// Export the images named `names` of `content` to `w` (see the module doc).
pub fn export(
    content: &NamespacedContent,
    names: &[&str],
    w: impl Write,
    opts: &ExportOptions,
) -> Result<()> {
    export_from(content, names, w, opts)
}

/// [`export`] from any store ([`ArchiveStore`]).
pub fn export_from(
    content: &dyn ArchiveStore,
    names: &[&str],
    w: impl Write,
    opts: &ExportOptions,
) -> Result<()> {
    let mut targets = Vec::new();
    for name in names {
        let img = content
            .image(name)
            .with_context(|| format!("image {name:?}"))?;
        let mut d = Descriptor::new(img.target.media_type, img.target.digest, img.target.size);
        d.annotations = img.target.annotations;
        d.annotations
            .insert(ANNOTATION_IMAGE_NAME.into(), (*name).to_owned());
        d.annotations
            .insert(ANNOTATION_REF_NAME.into(), oci_reference_name(name));
        targets.push(d);
    }

    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    records.insert(
        "oci-layout".into(),
        Record::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(), 0o444),
    );
    #[derive(serde::Serialize)]
    struct Index<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        manifests: &'a [Descriptor],
    }
    records.insert(
        "index.json".into(),
        Record::Bytes(
            serde_json::to_vec(&Index {
                schema_version: 2,
                manifests: &targets,
            })?,
            0o644,
        ),
    );

    let mut docker: BTreeMap<Digest, DockerManifest> = BTreeMap::new();
    let mut resolved: BTreeMap<Digest, Option<Digest>> = BTreeMap::new();
    for desc in &targets {
        let name = desc.annotations.get(ANNOTATION_IMAGE_NAME).cloned();
        match media_types::kind(&desc.media_type) {
            Kind::Manifest => {
                if let std::collections::btree_map::Entry::Vacant(e) = docker.entry(desc.digest) {
                    add_tree(content, desc, opts, &mut records, 0)?;
                    e.insert(DockerManifest {
                        manifest: desc.clone(),
                        names: Vec::new(),
                    });
                }
                if let (Some(n), Some(m)) = (name, docker.get_mut(&desc.digest)) {
                    m.names.push(n);
                }
            }
            Kind::Index => {
                let chosen = match resolved.get(&desc.digest) {
                    Some(c) => *c,
                    None => {
                        let c = add_index(content, desc, opts, &mut records, &mut docker)?;
                        resolved.insert(desc.digest, c);
                        c
                    }
                };
                if let (Some(n), Some(d)) = (name, chosen) {
                    if let Some(m) = docker.get_mut(&d) {
                        m.names.push(n);
                    }
                }
            }
            _ => bail!(
                "only manifests may be exported: invalid argument ({} is {})",
                desc.digest,
                desc.media_type
            ),
        }
    }
    if !opts.skip_manifest_json && !docker.is_empty() {
        records.insert(
            "manifest.json".into(),
            Record::Bytes(
                manifest_json(content, &docker).context("unable to create manifests file")?,
                0o644,
            ),
        );
    }
    if records.values().any(|r| matches!(r, Record::Blob(_))) {
        records.insert("blobs/".into(), Record::Dir);
        records.insert("blobs/sha256/".into(), Record::Dir);
    }
    // Everything must be there before anything is written.
    for r in records.values() {
        if let Record::Blob(d) = r {
            let info = content.info(&d.digest).with_context(|| {
                format!("content {} ({}) of the export", d.digest, d.media_type)
            })?;
            if info.size != d.size {
                bail!(
                    "content {} is {} bytes, its descriptor says {}",
                    d.digest,
                    info.size,
                    d.size
                );
            }
        }
    }
    write_tar(content, &records, w)
}

/// The blob record of `d`.
fn blob_record(d: &Descriptor, opts: &ExportOptions, records: &mut BTreeMap<String, Record>) {
    let foreign = matches!(
        media_types::kind(&d.media_type),
        Kind::Layer {
            non_distributable: true,
            ..
        }
    );
    if opts.skip_non_distributable && foreign {
        return;
    }
    records
        .entry(format!("blobs/sha256/{}", d.digest.encoded()))
        .or_insert_with(|| Record::Blob(Box::new(d.clone())));
}

/// `d` and everything below it (containerd's `getRecords`: all children, no filter).
fn add_tree(
    content: &dyn ArchiveStore,
    d: &Descriptor,
    opts: &ExportOptions,
    records: &mut BTreeMap<String, Record>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH {
        bail!(
            "indexes nested deeper than {MAX_INDEX_DEPTH} levels at {}",
            d.digest
        );
    }
    blob_record(d, opts, records);
    if !media_types::is_manifest_or_index(&d.media_type) {
        return Ok(());
    }
    let data = read(content, d)?;
    let children: Vec<Descriptor> = parse_manifest_or_index(&d.media_type, &data)
        .with_context(|| format!("{} of the export", d.digest))?
        .children()
        .map(Descriptor::from_oci)
        .collect::<Result<_>>()?;
    for c in &children {
        add_tree(content, c, opts, records, depth + 1)?;
    }
    Ok(())
}

/// An image index: its blob, the manifests wanted, and the one `manifest.json` gets.
fn add_index(
    content: &dyn ArchiveStore,
    desc: &Descriptor,
    opts: &ExportOptions,
    records: &mut BTreeMap<String, Record>,
    docker: &mut BTreeMap<Digest, DockerManifest>,
) -> Result<Option<Digest>> {
    blob_record(desc, opts, records);
    let ix =
        parse_index(&read(content, desc)?).with_context(|| format!("index {}", desc.digest))?;
    let mut candidates: Vec<Descriptor> = Vec::new();
    for m in ix.manifests() {
        let m = Descriptor::from_oci(m)?;
        let wanted = m
            .platform
            .as_ref()
            .is_none_or(|p| opts.platforms.matches(p));
        if wanted {
            candidates.push(m.clone());
        } else if !opts.all_platforms {
            continue;
        }
        add_tree(content, &m, opts, records, 1)?;
    }
    if candidates.is_empty() {
        bail!(
            "no manifest found for platform: not found (index {})",
            desc.digest
        );
    }
    // Best platform first; entries without a platform last (a stable sort, as containerd's).
    candidates.sort_by(|a, b| match (&a.platform, &b.platform) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => {
            if opts.platforms.less(x, y) {
                std::cmp::Ordering::Less
            } else if opts.platforms.less(y, x) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }
    });
    let first = candidates.swap_remove(0);
    let d = first.digest;
    docker.insert(
        d,
        DockerManifest {
            manifest: first,
            names: Vec::new(),
        },
    );
    Ok(Some(d))
}

fn read(content: &dyn ArchiveStore, d: &Descriptor) -> Result<Vec<u8>> {
    content
        .read_all(&d.digest, MAX_MANIFEST_SIZE)
        .with_context(|| format!("read {} ({})", d.digest, d.media_type))
}

/// Docker's `manifest.json` for the chosen manifests.
fn manifest_json(
    content: &dyn ArchiveStore,
    docker: &BTreeMap<Digest, DockerManifest>,
) -> Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Entry {
        #[serde(rename = "Config")]
        config: String,
        #[serde(rename = "RepoTags")]
        repo_tags: Option<Vec<String>>,
        #[serde(rename = "Layers")]
        layers: Option<Vec<String>>,
    }
    let path = |d: &str| -> Result<String> {
        let d: Digest = d.parse()?;
        Ok(format!("blobs/sha256/{}", d.encoded()))
    };
    let mut out = Vec::new();
    for m in docker.values() {
        let data = read(content, &m.manifest)?;
        let man = parse_manifest(&data)
            .with_context(|| format!("invalid manifest {:?}", m.manifest.digest.to_string()))?;
        let layers: Vec<String> = man
            .layers()
            .iter()
            .map(|l| path(l.digest().as_ref()))
            .collect::<Result<_>>()?;
        let mut tags = Vec::new();
        for n in &m.names {
            tags.push(familiar_repo_tag(n)?);
        }
        out.push(Entry {
            config: path(man.config().digest().as_ref())?,
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers: (!layers.is_empty()).then_some(layers),
        });
    }
    Ok(serde_json::to_vec(&out)?)
}

fn header(name: &str, size: u64, mode: u32, kind: tar::EntryType) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .with_context(|| format!("tar name {name:?}"))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    // Go's archive/tar writes the device numbers of every ustar entry, and its checksum as
    // six octal digits, NUL, space: byte for byte what ctr writes.
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    let bytes = h.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
    bytes[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// A reader that digests what it hands out.
struct Digesting<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn write_tar(
    content: &dyn ArchiveStore,
    records: &BTreeMap<String, Record>,
    w: impl Write,
) -> Result<()> {
    let mut b = tar::Builder::new(w);
    for (name, r) in records {
        match r {
            Record::Dir => {
                let h = header(name, 0, 0o755, tar::EntryType::Directory)?;
                b.append(&h, std::io::empty())
            }
            Record::Bytes(data, mode) => {
                let h = header(name, data.len() as u64, *mode, tar::EntryType::Regular)?;
                b.append(&h, data.as_slice())
            }
            Record::Blob(d) => {
                let h = header(name, d.size, 0o444, tar::EntryType::Regular)?;
                let file = content
                    .stream(&d.digest)
                    .with_context(|| format!("failed to get reader for {}", d.digest))?;
                let mut src = Digesting {
                    inner: file.take(d.size),
                    hash: Sha256::new(),
                    count: 0,
                };
                b.append(&h, &mut src)
                    .with_context(|| format!("failed to copy {} to tar", d.digest))?;
                let got = Digest::from_bytes(src.hash.finalize().into());
                if src.count != d.size {
                    bail!("unexpected copy size for {name}");
                }
                if got != d.digest {
                    return Err(anyhow!("unexpected digest {got} copied for {}", d.digest));
                }
                Ok(())
            }
        }
        .with_context(|| format!("write {name} to the archive"))?;
    }
    b.into_inner()
        .context("finish the archive")?
        .flush()
        .context("flush the archive")?;
    Ok(())
}
