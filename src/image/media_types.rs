//! Media types of OCI images and Docker schema 2 images, and what each one is: containerd's
//! `images/mediatypes.go` vocabulary.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer (deprecated in the spec, still met).
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable gzip layer.
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable zstd layer.
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// OCI empty JSON descriptor (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer (containerd's extension).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign (non-distributable) layer.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/// Docker foreign gzip layer.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 (signed), refused: containerd 2 dropped it and registries convert.
pub const DOCKER_SCHEMA1_MANIFEST: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 (unsigned).
pub const DOCKER_SCHEMA1_MANIFEST_UNSIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+json";

/// The `Accept` header value a resolver sends for a manifest, in containerd's order.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// How a layer's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    Uncompressed,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// What a media type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OCI index or Docker manifest list.
    Index,
    /// An image manifest (OCI or Docker schema 2).
    Manifest,
    /// An image config.
    Config,
    /// A filesystem layer.
    Layer {
        /// Its compression.
        compression: Compression,
        /// Foreign/non-distributable: not to be fetched from the registry by default.
        non_distributable: bool,
    },
    /// A Docker schema 1 manifest (refused with a clear error).
    Schema1Manifest,
    /// Anything else (attestations, signatures, artifacts, unknown).
    Other,
}

/// Classify a media type; parameters (`; charset=…`) are ignored.
pub fn kind(media_type: &str) -> Kind {
    let mt = media_type.split(';').next().unwrap_or("").trim();
    let layer = |compression, non_distributable| Kind::Layer {
        compression,
        non_distributable,
    };
    match mt {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        OCI_LAYER | DOCKER_LAYER => layer(Compression::Uncompressed, false),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => layer(Compression::Gzip, false),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => layer(Compression::Zstd, false),
        OCI_LAYER_NONDIST | DOCKER_FOREIGN_LAYER => layer(Compression::Uncompressed, true),
        OCI_LAYER_NONDIST_GZIP | DOCKER_FOREIGN_LAYER_GZIP => layer(Compression::Gzip, true),
        OCI_LAYER_NONDIST_ZSTD => layer(Compression::Zstd, true),
        DOCKER_SCHEMA1_MANIFEST | DOCKER_SCHEMA1_MANIFEST_UNSIGNED => Kind::Schema1Manifest,
        _ => Kind::Other,
    }
}

/// Whether the media type is a manifest or an index (something a reference resolves to).
pub fn is_manifest_or_index(media_type: &str) -> bool {
    matches!(kind(media_type), Kind::Manifest | Kind::Index)
}

/// Whether the media type is a layer (compressed or not).
pub fn is_layer(media_type: &str) -> bool {
    matches!(kind(media_type), Kind::Layer { .. })
}

/// The compression of a layer media type; None for non-layers.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match kind(media_type) {
        Kind::Layer { compression, .. } => Some(compression),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_oci_and_docker_types() {
        assert_eq!(kind(OCI_INDEX), Kind::Index);
        assert_eq!(kind(DOCKER_MANIFEST_LIST), Kind::Index);
        assert_eq!(kind(DOCKER_MANIFEST), Kind::Manifest);
        assert_eq!(
            kind("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            Kind::Manifest
        );
        assert_eq!(kind(DOCKER_CONFIG), Kind::Config);
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(layer_compression(OCI_LAYER_ZSTD), Some(Compression::Zstd));
        assert_eq!(
            layer_compression(OCI_LAYER),
            Some(Compression::Uncompressed)
        );
        assert_eq!(
            kind(DOCKER_FOREIGN_LAYER_GZIP),
            Kind::Layer {
                compression: Compression::Gzip,
                non_distributable: true
            }
        );
        assert_eq!(kind(DOCKER_SCHEMA1_MANIFEST), Kind::Schema1Manifest);
        assert_eq!(kind("application/vnd.in-toto+json"), Kind::Other);
        assert!(is_manifest_or_index(OCI_INDEX) && !is_manifest_or_index(OCI_CONFIG));
        assert!(is_layer(DOCKER_LAYER) && !is_layer(DOCKER_MANIFEST));
    }
}
