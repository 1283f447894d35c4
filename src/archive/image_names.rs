//! How an import names images and an export names manifests, as containerd 1.6 does
//! (`images/archive/reference.go`, `client/import.go`'s `imageName`):
//!
//! - an index entry's `io.containerd.image.name` annotation is the image name as it is;
//! - else its `org.opencontainers.image.ref.name`, given to the ref translator: a bare tag
//!   becomes `<base>:<tag>`; a full reference stays (and with `--base-name` it must start
//!   with the base name, or the entry gets no name);
//! - `--digests` adds `<base>@<digest>` for every entry;
//! - a docker archive's `RepoTags` are normalised (`busybox:latest` →
//!   `docker.io/library/busybox:latest`) into both annotations.

use crate::content::Digest;
use crate::image::Reference;
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// containerd's image name annotation.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI ref name annotation (a tag, by the image spec).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What `ctr image import` does with ref names and digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    /// `--base-name`, or ctr's default `import-<yyyy-mm-dd>` (then `filter` is false).
    pub base: String,
    /// With `--base-name`: full ref names must start with the base name.
    pub filter: bool,
    /// `--digests`: also name every entry `<base>@<digest>`.
    pub digests: bool,
    /// `--skip-digest-for-named`: no digest name for entries that got a name.
    pub skip_digest_for_named: bool,
}

impl Naming {
    /// ctr's names without `--base-name`: `import-<today, UTC>`.
    pub fn default_for_today() -> Naming {
        Naming {
            base: format!("import-{}", today_utc()),
            filter: false,
            digests: false,
            skip_digest_for_named: false,
        }
    }

    /// With `--base-name NAME`.
    pub fn with_base_name(name: &str) -> Naming {
        Naming {
            base: name.to_owned(),
            filter: true,
            digests: false,
            skip_digest_for_named: false,
        }
    }

    /// containerd's `refTranslator`.
    fn translate(&self, ref_name: &str) -> Option<String> {
        if ref_name.contains(['/', ':', '@']) {
            if self.filter && !is_image_prefix(ref_name, &self.base) {
                return None;
            }
            return Some(ref_name.to_owned());
        }
        Some(format!("{}:{ref_name}", self.base))
    }

    /// The names an index entry gets (none, one, or with `--digests` two).
    pub fn names_for(
        &self,
        annotations: &BTreeMap<String, String>,
        digest: &Digest,
    ) -> Vec<String> {
        let name = match annotations.get(ANNOTATION_IMAGE_NAME) {
            Some(n) if !n.is_empty() => Some(n.clone()),
            _ => annotations
                .get(ANNOTATION_REF_NAME)
                .filter(|r| !r.is_empty())
                .and_then(|r| self.translate(r)),
        };
        let mut out = Vec::new();
        let named = name.is_some();
        out.extend(name);
        if self.digests && !(self.skip_digest_for_named && named) {
            out.push(format!("{}@{digest}", self.base));
        }
        out
    }
}

/// containerd's `isImagePrefix`: `s` starts with `prefix` at a component boundary.
fn is_image_prefix(s: &str, prefix: &str) -> bool {
    match s.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with(['/', ':', '@']),
        None => false,
    }
}

/// A docker `RepoTags` entry normalised as containerd's `normalizeReference`
/// (`reference.ParseDockerRef`).
pub fn normalize_repo_tag(tag: &str) -> Result<String> {
    Reference::parse_docker_ref(tag)
        .map(|r| r.to_string())
        .with_context(|| format!("normalize image ref {tag:?}"))
}

/// containerd's `ociReferenceName`: the object (tag, `tag@digest`, `@digest`) of a full
/// name; a name without a host part is kept whole.
pub fn oci_reference_name(name: &str) -> String {
    // containerd's `reference.Parse` of a name without a path: `myidx` has no object, and
    // `busybox:latest` is a host with a bad port; either way the ref name is empty (as
    // ctr 1.6.20 exports an image named `myidx`).
    let Some((host, path)) = name.split_once('/') else {
        return String::new();
    };
    if host.is_empty() || host.contains('@') {
        return name.to_owned();
    }
    match path.find([':', '@']) {
        Some(i) => {
            let obj = &path[i..];
            obj.strip_prefix(':').unwrap_or(obj).to_owned()
        }
        None => String::new(),
    }
}

/// containerd's `familiarizeReference` for a docker `manifest.json` `RepoTags` entry:
/// parsed as a normalised name, `latest` added to a bare name, shown familiar.
pub fn familiar_repo_tag(name: &str) -> Result<String> {
    let r = Reference::parse_normalized_named(name)
        .with_context(|| format!("failed to parse {name:?}"))?;
    let r = if r.tag().is_none() && r.digest().is_none() {
        r.with_tag("latest")?
    } else {
        r
    };
    Ok(r.familiar_string())
}

/// Today's date in UTC as `yyyy-mm-dd` (ctr formats local time; a static binary has no
/// zone database to hand, so UTC it is).
fn today_utc() -> String {
    crate::timefmt::format_date(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_ctr_1_6_gives_them() {
        let d = Digest::of(b"m");
        let ann = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let n = Naming::with_base_name("foo/bar");
        assert_eq!(
            n.names_for(&ann(ANNOTATION_REF_NAME, "latest"), &d),
            ["foo/bar:latest"]
        );
        assert!(n
            .names_for(&ann(ANNOTATION_REF_NAME, "other/x:1"), &d)
            .is_empty());
        assert!(n
            .names_for(&ann(ANNOTATION_REF_NAME, "foo/barx:1"), &d)
            .is_empty());
        assert_eq!(
            n.names_for(&ann(ANNOTATION_REF_NAME, "foo/bar/x:1"), &d),
            ["foo/bar/x:1"]
        );
        // The containerd annotation is never translated nor filtered.
        assert_eq!(
            n.names_for(
                &ann(ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:1"),
                &d
            ),
            ["docker.io/library/busybox:1"]
        );
        let mut n = Naming::with_base_name("foo/bar");
        n.digests = true;
        assert_eq!(n.names_for(&BTreeMap::new(), &d), [format!("foo/bar@{d}")]);
        n.skip_digest_for_named = true;
        assert_eq!(
            n.names_for(&ann(ANNOTATION_REF_NAME, "v1"), &d),
            ["foo/bar:v1"]
        );
        assert!(Naming::default_for_today().base.starts_with("import-20"));

        assert_eq!(
            oci_reference_name("docker.io/library/busybox:latest"),
            "latest"
        );
        assert_eq!(
            oci_reference_name(&format!("docker.io/library/busybox@{d}")),
            format!("@{d}")
        );
        assert_eq!(oci_reference_name("busybox:latest"), "");
        assert_eq!(oci_reference_name("myidx"), "");
        assert_eq!(oci_reference_name("127.0.0.1:5000/x/y:t"), "t");
        assert_eq!(
            normalize_repo_tag("busybox:latest").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            familiar_repo_tag("docker.io/library/busybox").unwrap(),
            "busybox:latest"
        );
        assert_eq!(
            familiar_repo_tag("127.0.0.1:5000/a/b:v").unwrap(),
            "127.0.0.1:5000/a/b:v"
        );
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(
            crate::timefmt::format_date(std::time::UNIX_EPOCH),
            "1970-01-01"
        );
        assert_eq!(
            crate::timefmt::format_date(std::time::UNIX_EPOCH + day * 20_789),
            "2026-12-02"
        );
    }
}
