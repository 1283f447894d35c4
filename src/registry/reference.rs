//! An image reference split into what the registry client needs: the registry host
//! (namespace), the repository path, and a tag and/or digest. Minimal: docker.io and
//! `library/` defaults only; the image modules own the full normalisation (unify with it).

use anyhow::{bail, Result};
use std::fmt;

use super::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host namespace as written (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// The repository path below the host (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() || s.len() > 4096 {
            bail!("invalid reference {s:?}: empty or too long");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                bail!("invalid reference {s:?}: invalid tag format");
            }
        }
        let (host, repository) = match name.split_once('/') {
            Some((h, r)) if h.contains(['.', ':']) || h == "localhost" => {
                (h.to_string(), r.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if host == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(valid_component) {
            bail!("invalid reference {s:?}: invalid repository name");
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            host,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifests endpoint is asked for: the digest if there is one, else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_repository_tag_digest() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        let r = Reference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("v1"))
        );
        let d = Digest::sha256_of(b"x");
        let r = Reference::parse(&format!("localhost:5000/b:t@{d}")).unwrap();
        assert_eq!(r.digest.as_ref(), Some(&d));
        assert_eq!(r.object(), d.to_string());
        let r = Reference::parse("localhost:5000/b").unwrap();
        assert_eq!(r.object(), "latest");
        assert!(Reference::parse("Busybox").is_err());
        assert!(Reference::parse("busybox:").is_err());
        assert!(Reference::parse("busybox@sha256:12").is_err());
    }
}

/// A repository on a registry: where blobs and manifests live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// The registry host namespace (`docker.io`, `127.0.0.1:5000`).
    pub namespace: String,
    /// The path below it (`library/busybox`).
    pub name: String,
}

impl Reference {
    pub fn repo(&self) -> Repository {
        Repository {
            namespace: self.host.clone(),
            name: self.repository.clone(),
        }
    }
}
