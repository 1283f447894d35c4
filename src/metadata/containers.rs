//! Container records: what `ctr container create` stores (ID, labels, image, runtime and
//! its options, the spec, snapshotter and snapshot key, extensions, times). Protobuf `Any`
//! values are kept as type URL + bytes; the daemon turns them into its API's types.

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{decode, encode, Read, Tx, CONTAINERS};
use crate::metadata::encoding::{
    apply_label_paths, base64::serde_bytes, now_nanos, validate_identifier, validate_labels, Labels,
};
use crate::metadata::filter::Filter;
use crate::metadata::namespaces;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A protobuf `Any`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Any {
    /// `type_url`.
    pub type_url: String,
    /// The encoded message.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// The runtime a container runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    /// `io.containerd.runc.v2`, `io.containerd.ocibox.v2`…
    pub name: String,
    /// Its options (`containerd.runc.v1.Options`).
    #[serde(default)]
    pub options: Option<Any>,
}

/// A container record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The ID.
    pub id: String,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// The image name it was made from.
    #[serde(default)]
    pub image: String,
    /// The runtime.
    pub runtime: Runtime,
    /// The OCI spec (an `Any` of `types.containerd.io/opencontainers/runtime-spec/1/Spec`).
    pub spec: Option<Any>,
    /// Snapshotter name.
    #[serde(default)]
    pub snapshotter: String,
    /// Snapshot key of its rootfs.
    #[serde(default)]
    pub snapshot_key: String,
    /// Creation, unix ns.
    #[serde(default)]
    pub created_at: i64,
    /// Last update, unix ns.
    #[serde(default)]
    pub updated_at: i64,
    /// Client extensions by name.
    #[serde(default)]
    pub extensions: BTreeMap<String, Any>,
    /// The sandbox it belongs to (containerd 1.7), if any.
    #[serde(default)]
    pub sandbox: String,
}

/// containerd's `validateContainer`.
fn validate(c: &Container) -> anyhow::Result<()> {
    validate_identifier("container", &c.id)?;
    validate_labels(&c.labels)?;
    for k in c.extensions.keys() {
        if k.is_empty() {
            return Err(err(
                ErrorKind::InvalidArgument,
                "extension keys must not be zero-length",
            ));
        }
    }
    if c.runtime.name.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "must specify a runtime name",
        ));
    }
    if c.spec.is_none() {
        return Err(err(ErrorKind::InvalidArgument, "spec must not be nil"));
    }
    if !c.snapshot_key.is_empty() && c.snapshotter.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "snapshot key must not be set without a snapshotter",
        ));
    }
    Ok(())
}

fn field(c: &Container, path: &[String]) -> Option<String> {
    match path {
        [f] if f == "id" => Some(c.id.clone()),
        [f] if f == "image" => Some(c.image.clone()),
        [f] if f == "snapshotter" => Some(c.snapshotter.clone()),
        [r, n] if r == "runtime" && n == "name" => Some(c.runtime.name.clone()),
        [l, rest @ ..] if l == "labels" && !rest.is_empty() => {
            c.labels.get(&rest.join(".")).cloned()
        }
        _ => None,
    }
}

/// One container; NotFound when absent (containerd's `container "x" in namespace "ns"`).
pub fn get(r: &impl Read, ns: &str, id: &str) -> anyhow::Result<Container> {
    match r.get_raw(CONTAINERS, ns, id)? {
        Some(raw) => decode("container", &raw),
        None => Err(err(
            ErrorKind::NotFound,
            format!("container {id:?} in namespace {ns:?}"),
        )),
    }
}

/// The containers of `ns` matching any of `filters` (`id`, `image`, `runtime.name`,
/// `snapshotter`, `labels.*`).
pub fn list(r: &impl Read, ns: &str, filters: &[&str]) -> anyhow::Result<Vec<Container>> {
    let f = Filter::parse_all(filters)?;
    let mut out = Vec::new();
    for (_, raw) in r.scan_raw(CONTAINERS, ns)? {
        let c: Container = decode("container", &raw)?;
        if f.matches(&|p: &[String]| field(&c, p)) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Create; AlreadyExists when the ID is taken (containerd: `container "x": already exists`).
pub fn create(tx: &Tx, ns: &str, mut c: Container) -> anyhow::Result<Container> {
    validate(&c)?;
    namespaces::ensure(tx, ns)?;
    if tx.get_raw(CONTAINERS, ns, &c.id)?.is_some() {
        return Err(err(
            ErrorKind::AlreadyExists,
            format!("container {:?}", c.id),
        ));
    }
    let now = now_nanos();
    c.created_at = now;
    c.updated_at = now;
    tx.put_raw(CONTAINERS, ns, &c.id, &encode(&c)?)?;
    Ok(c)
}

/// containerd's container `Update`: the paths `labels`, `labels.<k>`, `spec`, `extensions`,
/// `extensions.<k>`, `image`, `snapshotkey`; no paths replaces those fields, refusing a
/// change of runtime name or snapshotter (immutable).
pub fn update(tx: &Tx, ns: &str, c: Container, paths: &[&str]) -> anyhow::Result<Container> {
    let mut cur: Container = match tx.get_raw(CONTAINERS, ns, &c.id)? {
        Some(raw) => decode("container", &raw)?,
        None => return Err(err(ErrorKind::NotFound, format!("container {:?}", c.id))),
    };
    let all = ["labels", "spec", "extensions", "image", "snapshotkey"];
    let paths: &[&str] = if paths.is_empty() {
        // containerd checks the snapshotter first: a change of both reads as its.
        if c.snapshotter != cur.snapshotter {
            return Err(err(
                ErrorKind::InvalidArgument,
                "container.Snapshotter field is immutable",
            ));
        }
        if c.runtime.name != cur.runtime.name {
            return Err(err(
                ErrorKind::InvalidArgument,
                "container.Runtime.Name field is immutable",
            ));
        }
        &all
    } else {
        paths
    };
    for p in apply_label_paths(&mut cur.labels, &c.labels, paths, "labels") {
        if let Some(key) = p.strip_prefix("extensions.") {
            match c.extensions.get(key) {
                Some(v) => cur.extensions.insert(key.to_owned(), v.clone()),
                None => cur.extensions.remove(key),
            };
            continue;
        }
        match p {
            "spec" => cur.spec = c.spec.clone(),
            "extensions" => cur.extensions = c.extensions.clone(),
            "image" => cur.image = c.image.clone(),
            "snapshotkey" => cur.snapshot_key = c.snapshot_key.clone(),
            other => {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    format!("cannot update {other:?} field on {:?}", c.id),
                ))
            }
        }
    }
    validate(&cur)?;
    cur.updated_at = now_nanos();
    tx.put_raw(CONTAINERS, ns, &cur.id, &encode(&cur)?)?;
    Ok(cur)
}

/// Delete; NotFound when absent.
pub fn delete(tx: &Tx, ns: &str, id: &str) -> anyhow::Result<()> {
    if !tx.remove_raw(CONTAINERS, ns, id)? {
        return Err(err(ErrorKind::NotFound, format!("container {id:?}")));
    }
    Ok(())
}
