//! The content descriptor (OCI image spec `Descriptor`) as containerd passes it around:
//! what a reference resolves to, what an index lists and what a manifest names, with
//! containerd's JSON field names (`mediaType`, `digest`, `size`, `urls`, `annotations`,
//! `platform`). The manifest parsers keep oci-spec's type for whole documents;
//! [`Descriptor::from_oci`] turns its descriptors into this one, refusing digests the
//! store cannot hold (anything but sha256).

use crate::content::Digest;
use crate::image::platform::Platform;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A typed pointer to content: media type, digest and size, plus where else it may be
/// fetched from, annotations, and (in an index) the platform it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// What the bytes are (`application/vnd.oci.image.manifest.v1+json`…).
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Their digest.
    pub digest: Digest,
    /// Their length in bytes.
    pub size: u64,
    /// Other places the blob may be fetched from (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor with just media type, digest and size.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }

    /// From oci-spec's descriptor (as the manifest parsers return them).
    pub fn from_oci(d: &oci_spec::image::Descriptor) -> anyhow::Result<Descriptor> {
        Ok(Descriptor {
            media_type: d.media_type().to_string(),
            digest: Digest::try_from(d.digest())?,
            size: d.size(),
            urls: d.urls().clone().unwrap_or_default(),
            annotations: d
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            platform: d.platform().as_ref().map(Platform::from_oci),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_containerd_field_names_and_round_trips() {
        let d = Descriptor::new(crate::image::media_types::OCI_MANIFEST, Digest::of(b"m"), 1);
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": Digest::of(b"m").to_string(),
                "size": 1,
            })
        );
        let full = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size":0,"urls":["https://x/y"],"annotations":{"a":"b"},
            "platform":{"architecture":"arm","os":"linux","variant":"v7"}}"#;
        let d: Descriptor = serde_json::from_str(full).unwrap();
        assert_eq!(d.urls, ["https://x/y"]);
        assert_eq!(d.annotations["a"], "b");
        assert_eq!(d.platform, Some(Platform::new("linux", "arm", "v7")));
        let back: Descriptor = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        let o: oci_spec::image::Descriptor = serde_json::from_str(full).unwrap();
        assert_eq!(Descriptor::from_oci(&o).unwrap(), d);
        // Negative sizes and other algorithms are refused.
        assert!(
            serde_json::from_str::<Descriptor>(&full.replace("\"size\":0", "\"size\":-1")).is_err()
        );
        assert!(serde_json::from_str::<Descriptor>(&full.replace("sha256:", "sha512:")).is_err());
    }
}
