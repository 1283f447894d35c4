//! Content as a namespace sees it: which blobs the namespace holds, with its own labels
//! (containerd's metadata content store: the blob is shared on disk, the labels are not).
//! Labels such as `containerd.io/gc.ref.content.*` and `containerd.io/gc.root` live here.

use crate::content::Digest;
use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{decode, encode, Read, Tx, CONTENT};
use crate::metadata::encoding::{apply_label_paths, now_nanos, validate_labels, Labels};
use crate::metadata::filter::Filter;
use crate::metadata::namespaces;
use serde::{Deserialize, Serialize};

/// What a namespace records about a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The namespace's labels on it.
    #[serde(default)]
    pub labels: Labels,
    /// When the namespace got it, unix ns.
    pub created_at: i64,
    /// Last label update, unix ns.
    pub updated_at: i64,
}

fn field(c: &ContentRecord, path: &[String]) -> Option<String> {
    match path {
        [f] if f == "digest" => Some(c.digest.to_string()),
        [f] if f == "size" => Some(c.size.to_string()),
        [l, rest @ ..] if l == "labels" && !rest.is_empty() => {
            c.labels.get(&rest.join(".")).cloned()
        }
        _ => None,
    }
}

/// Record that `ns` holds the committed blob `digest`; AlreadyExists when it does.
pub fn add(
    tx: &Tx,
    ns: &str,
    digest: Digest,
    size: u64,
    labels: Labels,
) -> anyhow::Result<ContentRecord> {
    validate_labels(&labels)?;
    namespaces::ensure(tx, ns)?;
    let key = digest.to_string();
    if tx.get_raw(CONTENT, ns, &key)?.is_some() {
        return Err(err(ErrorKind::AlreadyExists, format!("content {digest}")));
    }
    let now = now_nanos();
    let rec = ContentRecord {
        digest,
        size,
        labels,
        created_at: now,
        updated_at: now,
    };
    tx.put_raw(CONTENT, ns, &key, &encode(&rec)?)?;
    Ok(rec)
}

/// The namespace's record of a blob; NotFound when it does not hold it.
pub fn info(r: &impl Read, ns: &str, digest: &Digest) -> anyhow::Result<ContentRecord> {
    match r.get_raw(CONTENT, ns, &digest.to_string())? {
        Some(raw) => decode("content", &raw),
        None => Err(err(ErrorKind::NotFound, format!("content digest {digest}"))),
    }
}

/// The namespace's blobs matching any of `filters` (`digest`, `size`, `labels.*`).
pub fn list(r: &impl Read, ns: &str, filters: &[&str]) -> anyhow::Result<Vec<ContentRecord>> {
    let f = Filter::parse_all(filters)?;
    let mut out = Vec::new();
    for (_, raw) in r.scan_raw(CONTENT, ns)? {
        let c: ContentRecord = decode("content", &raw)?;
        if f.matches(&|p: &[String]| field(&c, p)) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Update labels by field paths (`labels`, `labels.<k>`; none = all labels), as
/// containerd's content `Update`.
pub fn update(
    tx: &Tx,
    ns: &str,
    digest: &Digest,
    labels: &Labels,
    paths: &[&str],
) -> anyhow::Result<ContentRecord> {
    let mut cur = info(tx, ns, digest)?;
    if paths.is_empty() {
        cur.labels = labels.clone();
    } else {
        let rest = apply_label_paths(&mut cur.labels, labels, paths, "labels");
        if let Some(p) = rest.first() {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("cannot update {p:?} field on content info {digest:?}"),
            ));
        }
    }
    validate_labels(&cur.labels)?;
    cur.updated_at = now_nanos();
    tx.put_raw(CONTENT, ns, &digest.to_string(), &encode(&cur)?)?;
    Ok(cur)
}

/// Drop the namespace's hold on a blob (the blob itself goes when no namespace holds it,
/// by garbage collection); NotFound when it does not hold it.
pub fn delete(tx: &Tx, ns: &str, digest: &Digest) -> anyhow::Result<()> {
    if !tx.remove_raw(CONTENT, ns, &digest.to_string())? {
        return Err(err(ErrorKind::NotFound, format!("content digest {digest}")));
    }
    Ok(())
}

/// The namespaces holding `digest` (for sharing and garbage collection).
pub fn holders(r: &impl Read, digest: &Digest) -> anyhow::Result<Vec<String>> {
    let key = digest.to_string();
    let mut out = Vec::new();
    for ns in namespaces::list(r)? {
        if r.get_raw(CONTENT, &ns, &key)?.is_some() {
            out.push(ns);
        }
    }
    Ok(out)
}
