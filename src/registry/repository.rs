//! Where a reference's content lives on a registry: the host namespace and the repository
//! path below it, and what the manifests endpoint is asked for. References themselves are
//! [`crate::image::Reference`] (containerd's normalisation).

use crate::image::reference::{Reference, DEFAULT_TAG};

/// A repository on a registry: where blobs and manifests live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// The registry host namespace (`docker.io`, `127.0.0.1:5000`).
    pub namespace: String,
    /// The path below it (`library/busybox`).
    pub name: String,
}

impl Repository {
    /// The repository of a (normalised) reference.
    pub fn of(reference: &Reference) -> Repository {
        Repository {
            namespace: reference.domain().to_owned(),
            name: reference.path().to_owned(),
        }
    }
}

/// What the manifests endpoint is asked for: the digest when there is one (containerd's
/// resolver pulls `name:tag@digest` by the digest), else the tag, else `latest`.
pub fn manifest_object(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => DEFAULT_TAG.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Digest;

    #[test]
    fn splits_namespace_name_and_object() {
        let r = Reference::parse_docker_ref("busybox").unwrap();
        let repo = Repository::of(&r);
        assert_eq!(
            (repo.namespace.as_str(), repo.name.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(manifest_object(&r), "latest");
        let r = Reference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(Repository::of(&r).namespace, "127.0.0.1:5000");
        assert_eq!(manifest_object(&r), "v1");
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("localhost:5000/b:t@{d}")).unwrap();
        assert_eq!(manifest_object(&r), d.to_string());
        let r = Reference::parse("localhost:5000/b").unwrap();
        assert_eq!(manifest_object(&r), "latest");
    }
}
