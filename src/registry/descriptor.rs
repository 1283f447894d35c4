//! An OCI content descriptor (media type, digest, size), minimal: what the registry client
//! resolves and fetches by. The image modules own the full type; unify with it.

use serde::{Deserialize, Serialize};

use super::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}
