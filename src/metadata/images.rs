//! Images: a name, the descriptor it points at, labels, and times.

use crate::content::Digest;
use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{decode, encode, Read, Tx, IMAGES};
use crate::metadata::encoding::{apply_label_paths, now_nanos, validate_labels, Labels};
use crate::metadata::filter::Filter;
use crate::metadata::namespaces;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The descriptor an image points at (containerd's `Target`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Media type of the manifest or index.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The name (usually a normalised reference: `docker.io/library/busybox:latest`).
    pub name: String,
    /// What it points at.
    pub target: Target,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// Creation time, unix ns (set by `create`).
    #[serde(default)]
    pub created_at: i64,
    /// Last update, unix ns (set by `create`/`update`).
    #[serde(default)]
    pub updated_at: i64,
}

fn validate(i: &Image) -> anyhow::Result<()> {
    if i.name.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "image name must not be empty",
        ));
    }
    if i.target.media_type.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "image Target.MediaType must not be empty",
        ));
    }
    validate_labels(&i.labels)
}

fn field(i: &Image, path: &[String]) -> Option<String> {
    match path {
        [f] if f == "name" => Some(i.name.clone()),
        [t, f] if t == "target" && f == "mediatype" => Some(i.target.media_type.clone()),
        [t, f] if t == "target" && f == "digest" => Some(i.target.digest.to_string()),
        [l, rest @ ..] if l == "labels" && !rest.is_empty() => {
            i.labels.get(&rest.join(".")).cloned()
        }
        [a, rest @ ..] if a == "annotations" && !rest.is_empty() => {
            i.target.annotations.get(&rest.join(".")).cloned()
        }
        _ => None,
    }
}

/// One image; NotFound when absent.
pub fn get(r: &impl Read, ns: &str, name: &str) -> anyhow::Result<Image> {
    match r.get_raw(IMAGES, ns, name)? {
        Some(raw) => decode("image", &raw),
        None => Err(err(ErrorKind::NotFound, format!("image {name:?}"))),
    }
}

/// The images of `ns` matching any of `filters` (fields `name`, `target.mediatype`,
/// `target.digest`, `labels.*`, `annotations.*`), by name.
pub fn list(r: &impl Read, ns: &str, filters: &[&str]) -> anyhow::Result<Vec<Image>> {
    let f = Filter::parse_all(filters)?;
    let mut out = Vec::new();
    for (_, raw) in r.scan_raw(IMAGES, ns)? {
        let i: Image = decode("image", &raw)?;
        if f.matches(&|p: &[String]| field(&i, p)) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Create; AlreadyExists when the name is taken. Times are set here.
pub fn create(tx: &Tx, ns: &str, mut image: Image) -> anyhow::Result<Image> {
    validate(&image)?;
    namespaces::ensure(tx, ns)?;
    if tx.get_raw(IMAGES, ns, &image.name)?.is_some() {
        return Err(err(
            ErrorKind::AlreadyExists,
            format!("image {:?}", image.name),
        ));
    }
    let now = now_nanos();
    image.created_at = now;
    image.updated_at = now;
    tx.put_raw(IMAGES, ns, &image.name, &encode(&image)?)?;
    Ok(image)
}

/// Update the fields named by `paths` (`labels`, `labels.<k>`, `target`, `annotations`,
/// `annotations.<k>`) from `image`; no paths replaces labels and target. NotFound when
/// absent; InvalidArgument for any other path.
pub fn update(tx: &Tx, ns: &str, image: Image, paths: &[&str]) -> anyhow::Result<Image> {
    let mut cur = get(tx, ns, &image.name)?;
    if paths.is_empty() {
        cur.labels = image.labels.clone();
        cur.target = image.target.clone();
    } else {
        let rest = apply_label_paths(&mut cur.labels, &image.labels, paths, "labels");
        let rest = apply_label_paths(
            &mut cur.target.annotations,
            &image.target.annotations,
            &rest,
            "annotations",
        );
        for p in rest {
            match p {
                "target" => cur.target = image.target.clone(),
                other => {
                    return Err(err(
                        ErrorKind::InvalidArgument,
                        format!("cannot update {other:?} field on image {:?}", image.name),
                    ))
                }
            }
        }
    }
    validate(&cur)?;
    cur.updated_at = now_nanos();
    tx.put_raw(IMAGES, ns, &cur.name, &encode(&cur)?)?;
    Ok(cur)
}

/// Delete; NotFound when absent.
pub fn delete(tx: &Tx, ns: &str, name: &str) -> anyhow::Result<()> {
    if !tx.remove_raw(IMAGES, ns, name)? {
        return Err(err(ErrorKind::NotFound, format!("image {name:?}")));
    }
    Ok(())
}
