//! The media types the client asks for when it fetches a manifest: the `Accept` list
//! containerd's resolver sends, so a registry answers ocibox exactly as it answers containerd.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// containerd's order: Docker schema 2 and manifest list first, then the OCI forms, then
/// anything (`*/*`) so a registry with an odd type still answers rather than 404s.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, */*";

/// Whether `media_type` names a manifest or an index (fetched from `/manifests/`, not
/// `/blobs/`).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_INDEX | OCI_MANIFEST | DOCKER_MANIFEST_LIST | DOCKER_MANIFEST
    )
}
