//! Namespaces: created on demand by any write into them (as containerd's buckets are),
//! or explicitly with labels; deleted only when empty.

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{
    decode, encode, Read, Tx, CONTAINERS, CONTENT, IMAGES, LEASES, SNAPSHOTS,
};
use crate::metadata::encoding::{validate_identifier, validate_labels, Labels};
use serde::{Deserialize, Serialize};

/// A namespace record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace's labels.
    #[serde(default)]
    pub labels: Labels,
}

/// Make sure `ns` exists (validating its name); the write paths of every resource call this.
pub fn ensure(tx: &Tx, ns: &str) -> anyhow::Result<()> {
    validate_identifier("namespace", ns)?;
    if tx.namespace_raw(ns)?.is_none() {
        tx.put_namespace_raw(ns, &encode(&Namespace::default())?)?;
    }
    Ok(())
}

/// Create `ns` with `labels`; AlreadyExists when it exists.
pub fn create(tx: &Tx, ns: &str, labels: Labels) -> anyhow::Result<()> {
    validate_identifier("namespace", ns)?;
    validate_labels(&labels)?;
    if tx.namespace_raw(ns)?.is_some() {
        return Err(err(ErrorKind::AlreadyExists, format!("namespace {ns:?}")));
    }
    tx.put_namespace_raw(ns, &encode(&Namespace { labels })?)
}

/// The namespace's labels; NotFound when it does not exist.
pub fn labels(r: &impl Read, ns: &str) -> anyhow::Result<Labels> {
    match r.namespace_raw(ns)? {
        Some(raw) => Ok(decode::<Namespace>("namespace", &raw)?.labels),
        None => Err(err(ErrorKind::NotFound, format!("namespace {ns:?}"))),
    }
}

/// Every namespace, sorted.
pub fn list(r: &impl Read) -> anyhow::Result<Vec<String>> {
    Ok(r.namespaces_raw()?.into_iter().map(|(k, _)| k).collect())
}

/// Set one label (an empty value removes it), creating the namespace if needed (containerd's
/// `SetLabel` does).
pub fn set_label(tx: &Tx, ns: &str, key: &str, value: &str) -> anyhow::Result<()> {
    ensure(tx, ns)?;
    let mut n: Namespace = decode("namespace", &tx.namespace_raw(ns)?.unwrap_or_default())?;
    if value.is_empty() {
        n.labels.remove(key);
    } else {
        n.labels.insert(key.to_owned(), value.to_owned());
    }
    validate_labels(&n.labels)?;
    tx.put_namespace_raw(ns, &encode(&n)?)
}

/// Delete an empty namespace: NotFound when absent, FailedPrecondition (containerd's
/// wording) while it still holds images, blobs, containers or snapshots. Leases do not
/// keep a namespace (containerd 1.6 drops its whole bucket, leases included): they are
/// deleted with it.
pub fn delete(tx: &Tx, ns: &str) -> anyhow::Result<()> {
    if tx.namespace_raw(ns)?.is_none() {
        return Err(err(ErrorKind::NotFound, format!("namespace {ns:?}")));
    }
    let mut used: Vec<String> = Vec::new();
    for (t, word) in [
        (IMAGES, "images"),
        (CONTENT, "blobs"),
        (CONTAINERS, "containers"),
    ] {
        if !tx.scan_raw(t, ns)?.is_empty() {
            used.push(word.to_owned());
        }
    }
    // Snapshot keys are `<snapshotter>/<key>`: one entry per snapshotter, as containerd's
    // `snapshot-<name>`.
    let mut snapshotters: Vec<String> = Vec::new();
    for (key, _) in tx.scan_raw(SNAPSHOTS, ns)? {
        let sn = key.split('/').next().unwrap_or("").to_owned();
        if !snapshotters.contains(&sn) {
            snapshotters.push(sn);
        }
    }
    used.extend(snapshotters.into_iter().map(|s| format!("snapshot-{s}")));
    if !used.is_empty() {
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!(
                "namespace {ns:?} must be empty, but it still has {}",
                used.join(", ")
            ),
        ));
    }
    for (key, _) in tx.scan_raw(LEASES, ns)? {
        tx.remove_raw(LEASES, ns, &key)?;
    }
    tx.remove_namespace_raw(ns)?;
    Ok(())
}
