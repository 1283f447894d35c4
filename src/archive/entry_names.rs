//! The names an image archive may hold, checked before a byte of an entry is read: what
//! `ctr image export`, `skopeo copy … oci-archive:`/`docker-archive:` and `docker save`
//! write, and nothing else. A name is refused when it is absolute, has a `..` (or empty)
//! component, or is not one of the layout's names (`oci-layout`, `index.json`,
//! `blobs/sha256/<64 hex>`, and a docker archive's `manifest.json`, `repositories`,
//! `<id>.json`, `<id>.tar`, `<id>/layer.tar`, `<id>/json`, `<id>/VERSION`). A leading `./`
//! (GNU tar's habit) is dropped first.

use crate::content::Digest;
use anyhow::{bail, Result};

/// Longest entry name accepted (a blob name is 78 bytes; a docker layer 74).
pub const MAX_NAME_BYTES: usize = 512;

/// What an entry name names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryName {
    /// `oci-layout`.
    OciLayout,
    /// `index.json`.
    IndexJson,
    /// `manifest.json` (a docker archive's, or the one `ctr export` adds).
    ManifestJson,
    /// `repositories` (docker's v1 tag file; read for nothing).
    Repositories,
    /// `blobs/sha256/<hex>`: a blob whose name is its digest.
    Blob(Digest),
    /// A docker archive file addressed from `manifest.json` by this (cleaned) name:
    /// `<id>.json`, `<id>.tar`, `<id>/layer.tar`.
    DockerFile(String),
    /// A docker v1 metadata file (`<id>/json`, `<id>/VERSION`): read for nothing.
    DockerV1Meta,
    /// A directory of the layout (`blobs/`, `blobs/sha256/`, `<id>/`).
    Directory,
}

/// An id docker uses for a file or directory: letters, digits, `.`, `_`, `-`, not starting
/// with a dot (which also rules out `.` and `..`).
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The name with a leading `./` and a trailing `/` removed, split into components; refused
/// when it is absolute, empty, too long, not UTF-8, or has `.`/`..`/empty components.
pub fn components(raw: &[u8]) -> Result<Vec<&str>> {
    let shown = String::from_utf8_lossy(raw);
    if raw.len() > MAX_NAME_BYTES {
        bail!("archive entry name {shown:?} is longer than {MAX_NAME_BYTES} bytes");
    }
    let Ok(name) = std::str::from_utf8(raw) else {
        bail!("archive entry name {shown:?} is not UTF-8");
    };
    if name.starts_with('/') {
        bail!("archive entry {name:?} has an absolute name");
    }
    let mut rest = name;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest == "." {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    for p in &parts {
        match *p {
            ".." => bail!("archive entry {name:?} climbs out with \"..\""),
            "" | "." => bail!("archive entry {name:?} has an empty or \".\" component"),
            _ => {}
        }
    }
    Ok(parts)
}

/// Classify an entry's name; `dir` says the entry is a directory.
pub fn classify(raw: &[u8], dir: bool) -> Result<EntryName> {
    let parts = components(raw)?;
    let shown = String::from_utf8_lossy(raw);
    let not_allowed = || {
        anyhow::anyhow!(
            "archive entry {shown:?} is not a name of an OCI image layout or a docker save archive"
        )
    };
    if dir {
        return match parts.as_slice() {
            [] | ["blobs"] | ["blobs", _] => Ok(EntryName::Directory),
            [id] if is_id(id) => Ok(EntryName::Directory),
            _ => Err(not_allowed()),
        };
    }
    match parts.as_slice() {
        ["oci-layout"] => Ok(EntryName::OciLayout),
        ["index.json"] => Ok(EntryName::IndexJson),
        ["manifest.json"] => Ok(EntryName::ManifestJson),
        ["repositories"] => Ok(EntryName::Repositories),
        ["blobs", alg, hex] => {
            if *alg != Digest::ALGORITHM {
                bail!("archive entry {shown:?}: unsupported digest algorithm {alg:?}");
            }
            Digest::from_encoded(hex)
                .map(EntryName::Blob)
                .map_err(|e| e.context(format!("archive entry {shown:?}")))
        }
        [f] if is_id(f) && (f.ends_with(".json") || f.ends_with(".tar")) => {
            Ok(EntryName::DockerFile((*f).to_owned()))
        }
        [id, "layer.tar"] if is_id(id) => Ok(EntryName::DockerFile(format!("{id}/layer.tar"))),
        [id, "json" | "VERSION"] if is_id(id) => Ok(EntryName::DockerV1Meta),
        _ => Err(not_allowed()),
    }
}

/// The cleaned name a docker `manifest.json` uses for a file (`Config`, `Layers` entries),
/// or None when it names nothing an archive may hold.
pub fn docker_reference(name: &str) -> Option<String> {
    match classify(name.as_bytes(), false).ok()? {
        EntryName::DockerFile(n) => Some(n),
        EntryName::Blob(d) => Some(format!("blobs/sha256/{}", d.encoded())),
        _ => None,
    }
}

/// Where a docker v1.2 `<id>/layer.tar` symlink points: `../<id2>/layer.tar` (what docker
/// save writes for a layer shared between images) or `../<hex>.tar` (what skopeo's
/// docker-archive writes for every layer), as the cleaned target name. Anything else is
/// refused.
pub fn docker_layer_link(name: &str, target: &[u8]) -> Result<String> {
    let shown = String::from_utf8_lossy(target);
    let link = match classify(name.as_bytes(), false)? {
        EntryName::DockerFile(n) if n.ends_with("/layer.tar") => n,
        _ => bail!(
            "archive entry {name:?} is a symlink (to {shown:?}); only a docker layer.tar may be one"
        ),
    };
    let t = std::str::from_utf8(target).unwrap_or("");
    let resolved = match t.strip_prefix("../") {
        Some(rest) => rest,
        None => t,
    };
    match classify(resolved.as_bytes(), false) {
        Ok(EntryName::DockerFile(n)) if n.ends_with(".tar") && n != link => Ok(n),
        _ => bail!("archive entry {name:?} is a symlink to {shown:?}, which is not another layer of the archive"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_pass_and_everything_else_is_refused() {
        let hex = "a".repeat(64);
        let d = Digest::from_encoded(&hex).unwrap();
        for (n, want) in [
            ("oci-layout", EntryName::OciLayout),
            ("./index.json", EntryName::IndexJson),
            ("manifest.json", EntryName::ManifestJson),
            ("repositories", EntryName::Repositories),
            (&*format!("blobs/sha256/{hex}"), EntryName::Blob(d)),
            (
                &*format!("{hex}.json"),
                EntryName::DockerFile(format!("{hex}.json")),
            ),
            (
                &*format!("{hex}/layer.tar"),
                EntryName::DockerFile(format!("{hex}/layer.tar")),
            ),
            (&*format!("{hex}/VERSION"), EntryName::DockerV1Meta),
        ] {
            assert_eq!(classify(n.as_bytes(), false).unwrap(), want, "{n}");
        }
        assert_eq!(
            classify(b"blobs/sha256/", true).unwrap(),
            EntryName::Directory
        );
        assert_eq!(classify(b"./", true).unwrap(), EntryName::Directory);
        for bad in [
            "/index.json",
            "../index.json",
            "blobs/../../etc/passwd",
            "blobs/sha256/../../x",
            "blobs//sha256",
            "etc/passwd",
            "blobs/sha512/abcd",
            "blobs/sha256/ABC",
            ".hidden.json",
            "a/b/c/d",
        ] {
            let e = classify(bad.as_bytes(), false).unwrap_err();
            assert!(!format!("{e:#}").is_empty(), "{bad}");
        }
        assert!(classify(b"a/b", true).is_err());
        assert_eq!(
            docker_layer_link("x/layer.tar", b"../y/layer.tar").unwrap(),
            "y/layer.tar"
        );
        assert_eq!(
            docker_layer_link("x/layer.tar", b"../ab.tar").unwrap(),
            "ab.tar"
        );
        assert!(docker_layer_link("x/layer.tar", b"/etc/passwd").is_err());
        assert!(docker_layer_link("x/layer.tar", b"../ab.json").is_err());
        assert!(docker_layer_link("x/layer.tar", b"../../y/layer.tar").is_err());
        assert!(docker_layer_link("index.json", b"../y/layer.tar").is_err());
        assert!(docker_layer_link("x/layer.tar", b"../x/layer.tar").is_err());
    }
}
