//! Leases: named holds on resources (content, ingests, snapshots) that keep them from
//! garbage collection while a pull or an unpack is under way, with containerd's
//! `containerd.io/gc.expire` label for expiry.

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{decode, encode, Read, Tx, LEASES};
use crate::metadata::encoding::{now_nanos, validate_labels, Labels};
use crate::metadata::filter::Filter;
use crate::metadata::namespaces;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// The label holding a lease's expiry (RFC 3339).
pub const EXPIRE_LABEL: &str = "containerd.io/gc.expire";
/// The label that makes a lease flat: it holds exactly its resources, not what they reference.
pub const FLAT_LABEL: &str = "containerd.io/gc.flat";

/// A resource a lease holds: `kind` is `content` (id a digest), `ingests` (id a ref) or
/// `snapshots/<snapshotter>` (id a snapshot key), as containerd's lease resources.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    /// The resource ID.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A lease record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The ID.
    pub id: String,
    /// Labels (expiry, flat).
    #[serde(default)]
    pub labels: Labels,
    /// Creation time, unix ns.
    pub created_at: i64,
    /// What it holds, sorted.
    #[serde(default)]
    pub resources: Vec<Resource>,
}

impl Lease {
    /// Whether the lease has an expiry label in the past at `now` (an unparsable expiry
    /// counts as expired, so a bad label cannot pin resources forever).
    pub fn expired(&self, now: SystemTime) -> bool {
        match self.labels.get(EXPIRE_LABEL) {
            None => false,
            Some(v) => match crate::timefmt::parse(v) {
                Some(t) => t <= now,
                None => true,
            },
        }
    }
}

fn validate_resource(r: &Resource) -> anyhow::Result<()> {
    match r.kind.as_str() {
        "content" => {
            r.id.parse::<crate::content::Digest>()?;
        }
        "ingests" => {
            if r.id.is_empty() {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    "ingest lease resource needs a ref",
                ));
            }
        }
        k if k.strip_prefix("snapshots/").is_some_and(|s| !s.is_empty()) => {
            if r.id.is_empty() {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    "snapshot lease resource needs a key",
                ));
            }
        }
        k => {
            return Err(err(
                ErrorKind::NotImplemented,
                format!("unsupported lease resource type {k}"),
            ));
        }
    }
    Ok(())
}

/// One lease; NotFound when absent.
pub fn get(r: &impl Read, ns: &str, id: &str) -> anyhow::Result<Lease> {
    match r.get_raw(LEASES, ns, id)? {
        Some(raw) => decode("lease", &raw),
        None => Err(err(ErrorKind::NotFound, format!("lease {id:?}"))),
    }
}

/// The leases of `ns` matching any of `filters` (`id`, `labels.*`).
pub fn list(r: &impl Read, ns: &str, filters: &[&str]) -> anyhow::Result<Vec<Lease>> {
    let f = Filter::parse_all(filters)?;
    let mut out = Vec::new();
    for (_, raw) in r.scan_raw(LEASES, ns)? {
        let l: Lease = decode("lease", &raw)?;
        let field = |p: &[String]| match p {
            [f] if f == "id" => Some(l.id.clone()),
            [x, rest @ ..] if x == "labels" && !rest.is_empty() => {
                l.labels.get(&rest.join(".")).cloned()
            }
            _ => None,
        };
        if f.matches(&field) {
            out.push(l);
        }
    }
    Ok(out)
}

/// Create; AlreadyExists when the ID is taken.
///
/// A lease ID is any non-empty string, as containerd's: its clients make them as
/// `<nanoseconds>-<base64url>` (`leases.WithRandomID`), which may hold `--` or `_` that the
/// identifier rule for other objects refuses.
pub fn create(tx: &Tx, ns: &str, id: &str, labels: Labels) -> anyhow::Result<Lease> {
    if id.is_empty() {
        return Err(err(ErrorKind::InvalidArgument, "lease id must be provided"));
    }
    validate_labels(&labels)?;
    namespaces::ensure(tx, ns)?;
    if tx.get_raw(LEASES, ns, id)?.is_some() {
        return Err(err(ErrorKind::AlreadyExists, format!("lease {id:?}")));
    }
    let l = Lease {
        id: id.to_owned(),
        labels,
        created_at: now_nanos(),
        resources: Vec::new(),
    };
    tx.put_raw(LEASES, ns, id, &encode(&l)?)?;
    Ok(l)
}

/// Delete; NotFound when absent. What it held becomes collectable.
pub fn delete(tx: &Tx, ns: &str, id: &str) -> anyhow::Result<()> {
    if !tx.remove_raw(LEASES, ns, id)? {
        return Err(err(ErrorKind::NotFound, format!("lease {id:?}")));
    }
    Ok(())
}

/// Add a resource to a lease (idempotent); NotFound when the lease is absent.
pub fn add_resource(tx: &Tx, ns: &str, id: &str, res: Resource) -> anyhow::Result<()> {
    validate_resource(&res)?;
    let mut l = get(tx, ns, id)?;
    if let Err(pos) = l.resources.binary_search(&res) {
        l.resources.insert(pos, res);
        tx.put_raw(LEASES, ns, id, &encode(&l)?)?;
    }
    Ok(())
}

/// Remove a resource from a lease (absent resources are fine); NotFound when the lease is.
pub fn delete_resource(tx: &Tx, ns: &str, id: &str, res: &Resource) -> anyhow::Result<()> {
    let mut l = get(tx, ns, id)?;
    if let Ok(pos) = l.resources.binary_search(res) {
        l.resources.remove(pos);
        tx.put_raw(LEASES, ns, id, &encode(&l)?)?;
    }
    Ok(())
}
