//! Parsing manifests, indexes and configs (OCI and Docker schema 2) from untrusted bytes,
//! with size limits and media-type checks, into oci-spec's types; and choosing the
//! manifests of an index for a platform matcher.

use crate::content::Digest;
use crate::errdefs::{err, ErrorKind};
use crate::image::media_types::{self, Kind};
use crate::image::platform::{Matcher, Platform};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

/// Largest manifest or index accepted (containerd reads manifests fully into memory too;
/// registries cap them at 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config accepted (long histories make configs big, not this big).
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;
/// Deepest nesting of indexes followed when resolving (an index loop ends here).
pub const MAX_INDEX_DEPTH: usize = 8;

/// A manifest or an index, as a reference may resolve to either.
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestOrIndex {
    /// An image manifest.
    Manifest(Box<ImageManifest>),
    /// An index / manifest list.
    Index(Box<ImageIndex>),
}

impl ManifestOrIndex {
    /// The descriptors it references, as containerd's `images.Children` walks them: an
    /// index's manifests, or a manifest's config then its layers.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Descriptor> + '_> {
        match self {
            ManifestOrIndex::Index(ix) => Box::new(ix.manifests().iter()),
            ManifestOrIndex::Manifest(m) => {
                Box::new(std::iter::once(m.config()).chain(m.layers().iter()))
            }
        }
    }
}

fn invalid(msg: impl Into<String>) -> anyhow::Error {
    err(ErrorKind::InvalidArgument, msg)
}

/// The shape checks containerd's `validateMediaType` does before decoding: a document
/// declared as a manifest must not carry `manifests`, one declared as an index must not
/// carry `layers`/`config`; schema 1 is refused.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde::de::IgnoredAny>,
}

fn check_size(what: &str, data: &[u8], limit: u64) -> anyhow::Result<()> {
    if data.len() as u64 > limit {
        return Err(invalid(format!(
            "{what} is {} bytes, larger than the limit of {limit} bytes",
            data.len()
        )));
    }
    Ok(())
}

fn probe(what: &str, data: &[u8]) -> anyhow::Result<Probe> {
    let p: Probe =
        serde_json::from_slice(data).map_err(|e| invalid(format!("{what}: invalid JSON: {e}")))?;
    if p.fs_layers.is_some() || p.schema_version == Some(1) {
        return Err(err(
            ErrorKind::NotImplemented,
            "Docker schema 1 manifests are not supported (push the image again with schema 2 or OCI)",
        ));
    }
    if p.schema_version != Some(2) {
        return Err(invalid(format!(
            "{what}: schemaVersion must be 2, got {:?}",
            p.schema_version
        )));
    }
    Ok(p)
}

/// Parse an image manifest of at most [`MAX_MANIFEST_SIZE`] bytes.
pub fn parse_manifest(data: &[u8]) -> anyhow::Result<ImageManifest> {
    check_size("manifest", data, MAX_MANIFEST_SIZE)?;
    let p = probe("manifest", data)?;
    if p.manifests.is_some() {
        return Err(invalid("manifest: expected manifest but found index"));
    }
    if let Some(mt) = &p.media_type {
        if media_types::kind(mt) != Kind::Manifest {
            return Err(invalid(format!("manifest: unexpected mediaType {mt:?}")));
        }
    }
    serde_json::from_slice(data).map_err(|e| invalid(format!("manifest: {e}")))
}

/// Parse an index / manifest list of at most [`MAX_MANIFEST_SIZE`] bytes.
pub fn parse_index(data: &[u8]) -> anyhow::Result<ImageIndex> {
    check_size("index", data, MAX_MANIFEST_SIZE)?;
    let p = probe("index", data)?;
    if p.layers.is_some() || p.config.is_some() {
        return Err(invalid("index: expected index but found manifest"));
    }
    if let Some(mt) = &p.media_type {
        if media_types::kind(mt) != Kind::Index {
            return Err(invalid(format!("index: unexpected mediaType {mt:?}")));
        }
    }
    serde_json::from_slice(data).map_err(|e| invalid(format!("index: {e}")))
}

/// Parse a manifest or an index by the media type it was served or described with.
pub fn parse_manifest_or_index(media_type: &str, data: &[u8]) -> anyhow::Result<ManifestOrIndex> {
    match media_types::kind(media_type) {
        Kind::Manifest => parse_manifest(data).map(|m| ManifestOrIndex::Manifest(Box::new(m))),
        Kind::Index => parse_index(data).map(|i| ManifestOrIndex::Index(Box::new(i))),
        Kind::Schema1Manifest => Err(err(
            ErrorKind::NotImplemented,
            "Docker schema 1 manifests are not supported (push the image again with schema 2 or OCI)",
        )),
        _ => Err(err(
            ErrorKind::NotImplemented,
            format!("media type {media_type:?} is neither a manifest nor an index"),
        )),
    }
}

/// Parse an image config of at most [`MAX_CONFIG_SIZE`] bytes.
pub fn parse_config(data: &[u8]) -> anyhow::Result<ImageConfiguration> {
    check_size("image config", data, MAX_CONFIG_SIZE)?;
    let mut v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| invalid(format!("image config: {e}")))?;
    // `history` is optional in the image spec, but oci-spec 0.7 requires it: configs made by
    // umoci, some builders and containerd's own tests have none.
    if let Some(obj) = v.as_object_mut() {
        if obj.get("history").is_none_or(|h| h.is_null()) {
            obj.insert("history".into(), serde_json::Value::Array(Vec::new()));
        }
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("image config: {e}")))
}

/// The diff IDs of a config's rootfs, validated.
pub fn diff_ids(config: &ImageConfiguration) -> anyhow::Result<Vec<Digest>> {
    let rootfs = config.rootfs();
    if rootfs.typ() != "layers" {
        return Err(invalid(format!(
            "image config: rootfs type {:?}, expected \"layers\"",
            rootfs.typ()
        )));
    }
    rootfs.diff_ids().iter().map(|d| d.parse()).collect()
}

/// A descriptor's digest as a store digest (refusing algorithms the store does not hold).
pub fn descriptor_digest(d: &Descriptor) -> anyhow::Result<Digest> {
    Digest::try_from(d.digest())
}

/// The platform of an index entry; an entry without one is taken as matching only
/// `Matcher::All` (containerd treats platform-less entries in an index the same way when
/// a platform is asked for: it keeps them, see `select_manifests`).
pub fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(Platform::from_oci)
}

/// containerd's `FilterPlatforms` + `LimitManifests(1)` for a pull: the manifests of
/// `index` wanted by `matcher`, best first. With `limit` Some(n) at most n (a normal pull
/// takes 1; `--all-platforms` passes `Matcher::All` and None). Entries without a platform
/// are kept (containerd keeps them: they are often nested indexes) after the matching ones.
pub fn select_manifests(
    index: &ImageIndex,
    matcher: &Matcher,
    limit: Option<usize>,
) -> Vec<Descriptor> {
    let entries = index.manifests();
    let mut with: Vec<(usize, Platform)> = Vec::new();
    let mut without = Vec::new();
    for (i, d) in entries.iter().enumerate() {
        if !media_types::is_manifest_or_index(d.media_type().as_ref()) {
            // Attestations and other artifacts are never pulled as platforms.
            continue;
        }
        match descriptor_platform(d) {
            Some(p) => with.push((i, p)),
            None => without.push(i),
        }
    }
    let plats: Vec<Platform> = with.iter().map(|(_, p)| p.clone()).collect();
    let mut out: Vec<Descriptor> = matcher
        .select(&plats)
        .into_iter()
        .map(|k| entries[with[k].0].clone())
        .collect();
    out.extend(without.into_iter().map(|i| entries[i].clone()));
    if let Some(n) = limit {
        out.truncate(n);
    }
    out
}

#[cfg(test)]
mod tests;
