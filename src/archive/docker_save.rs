//! A `docker save` archive (Docker image spec v1.1/v1.2: `manifest.json` listing each
//! image's config file, layer files and `RepoTags`) turned into what containerd 1.6's
//! importer makes of it: per image a Docker schema 2 manifest (config
//! `application/vnd.docker.container.image.v1+json`, layers `…rootfs.diff.tar` when plain,
//! `…rootfs.diff.tar.gzip` otherwise), its platform from the config, one index entry per
//! tag with the name annotations, and an OCI index over them. The JSON is written field for
//! field as Go's `json.Marshal` writes containerd's structs, so the digests are containerd's.

use crate::content::Digest;
use crate::image::descriptor::Descriptor;
use crate::image::media_types::{self, Compression};
use crate::image::Platform;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::image_names::{
    normalize_repo_tag, oci_reference_name, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};

/// Most images one `manifest.json` may list.
pub const MAX_IMAGES: usize = 4096;
/// Most layers of one image.
pub const MAX_LAYERS: usize = 1024;

/// One image of a docker archive's `manifest.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct DockerImage {
    /// The config file's name in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Its tags (`busybox:latest`); may be absent.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layer files, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Option<Vec<String>>,
}

/// Parse `manifest.json`.
pub fn parse_manifest_json(data: &[u8]) -> Result<Vec<DockerImage>> {
    let v: Vec<DockerImage> =
        serde_json::from_slice(data).context("untar manifest \"manifest.json\"")?;
    if v.len() > MAX_IMAGES {
        bail!(
            "manifest.json lists {} images, more than {MAX_IMAGES}",
            v.len()
        );
    }
    for i in &v {
        let n = i.layers.as_ref().map_or(0, Vec::len);
        if n > MAX_LAYERS {
            bail!(
                "manifest.json: image {:?} has {n} layers, more than {MAX_LAYERS}",
                i.config
            );
        }
    }
    Ok(v)
}

/// The media type containerd 1.6 gives a docker archive layer: plain tar for an
/// uncompressed one, gzip for anything else (it does not tell zstd apart here).
pub fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::Uncompressed => media_types::DOCKER_LAYER,
        _ => media_types::DOCKER_LAYER_GZIP,
    }
}

/// The compression a blob's first bytes show.
pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::Uncompressed
    }
}

#[derive(Serialize)]
struct Schema2Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

/// The Docker schema 2 manifest of a config and its layers, as bytes.
pub fn schema2_manifest(config: &Descriptor, layers: &[Descriptor]) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Schema2Manifest {
        schema_version: 2,
        media_type: media_types::DOCKER_MANIFEST,
        config,
        layers,
    })?)
}

#[derive(Serialize)]
struct Index<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    manifests: &'a [Descriptor],
}

/// An OCI index over `manifests` as containerd writes one (no mediaType field).
pub fn oci_index(manifests: &[Descriptor]) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Index {
        schema_version: 2,
        manifests,
    })?)
}

/// The platform a config names, normalised (`images.Platforms` of a manifest): OS and
/// architecture only, as containerd 1.6 reads them; None when the config names neither.
pub fn config_platform(config: &[u8]) -> Result<Option<Platform>> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
    }
    let p: Probe = serde_json::from_slice(config).context("image config is not valid JSON")?;
    if p.os.is_empty() && p.architecture.is_empty() {
        return Ok(None);
    }
    Ok(Some(Platform::new(&p.os, &p.architecture, "").normalize()))
}

/// The index entries of one image: one per tag (with the name annotations), or the bare
/// manifest when it has no tags.
pub fn index_entries(manifest: &Descriptor, repo_tags: &[String]) -> Result<Vec<Descriptor>> {
    if repo_tags.is_empty() {
        return Ok(vec![manifest.clone()]);
    }
    let mut out = Vec::new();
    for t in repo_tags {
        let normalized = normalize_repo_tag(t)?;
        let mut d = manifest.clone();
        d.annotations = BTreeMap::from([
            (ANNOTATION_IMAGE_NAME.to_owned(), normalized.clone()),
            (
                ANNOTATION_REF_NAME.to_owned(),
                oci_reference_name(&normalized),
            ),
        ]);
        out.push(d);
    }
    Ok(out)
}

/// A descriptor for bytes about to be stored.
pub fn descriptor_of(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor::new(media_type, Digest::of(data), data.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_bytes_are_gos() {
        let c = Descriptor::new(media_types::DOCKER_CONFIG, Digest::of(b"c"), 3);
        let l = Descriptor::new(media_types::DOCKER_LAYER, Digest::of(b"l"), 4);
        let m = schema2_manifest(&c, &[l]).unwrap();
        let s = String::from_utf8(m).unwrap();
        assert!(s.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:"#), "{s}");
        let mut d = descriptor_of(media_types::DOCKER_MANIFEST, s.as_bytes());
        d.platform = Some(Platform::new("linux", "amd64", ""));
        let e = index_entries(&d, &["busybox:latest".into()]).unwrap();
        let ix = String::from_utf8(oci_index(&e).unwrap()).unwrap();
        assert!(ix.contains(r#""annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest","org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}"#), "{ix}");
        assert_eq!(sniff_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff_compression(b"bin/"), Compression::Uncompressed);
        assert_eq!(
            config_platform(br#"{"os":"linux","architecture":"arm64"}"#).unwrap(),
            Some(Platform::new("linux", "arm64", "v8"))
        );
        assert!(parse_manifest_json(b"{}").is_err());
    }
}
