//! Snapshot records per namespace: containerd's metadata snapshotter maps a namespace's
//! key to the snapshotter's own (backing) name, with parent, kind, labels and times. The
//! snapshotters themselves (src/snapshot/) keep their on-disk state; this is the namespaced
//! view the API serves.

use crate::errdefs::{err, ErrorKind};
use crate::metadata::db::{decode, encode, Read, Tx, SNAPSHOTS};
use crate::metadata::encoding::{apply_label_paths, now_nanos, validate_labels, Labels};
use crate::metadata::filter::Filter;
use crate::metadata::namespaces;
use serde::{Deserialize, Serialize};

/// A snapshot's kind, as containerd names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read-only view of a committed parent.
    View,
    /// Writable, being prepared.
    Active,
    /// Committed, immutable, can be a parent.
    Committed,
}

impl Kind {
    /// `view`, `active`, `committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// A namespaced snapshot record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The snapshotter (`overlayfs`, `native`).
    pub snapshotter: String,
    /// The namespace's key (for committed layers usually the chain ID).
    pub key: String,
    /// The snapshotter's own name for it.
    pub backing: String,
    /// The parent's key ("" for none).
    #[serde(default)]
    pub parent: String,
    /// Kind.
    pub kind: Kind,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// Creation, unix ns.
    #[serde(default)]
    pub created_at: i64,
    /// Last update, unix ns.
    #[serde(default)]
    pub updated_at: i64,
    /// The snapshotter's own directory number (`snapshots/<id>`), for a snapshotter that
    /// keeps its records here ([`crate::snapshot::RedbStore`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir_id: Option<u64>,
    /// Disk usage fixed at commit, by such a snapshotter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::snapshot::Usage>,
}

pub(crate) fn table_key(snapshotter: &str, key: &str) -> String {
    format!("{snapshotter}/{key}")
}

/// One snapshot; NotFound when absent.
pub fn get(r: &impl Read, ns: &str, snapshotter: &str, key: &str) -> anyhow::Result<Snapshot> {
    match r.get_raw(SNAPSHOTS, ns, &table_key(snapshotter, key))? {
        Some(raw) => decode("snapshot", &raw),
        None => Err(err(
            ErrorKind::NotFound,
            format!("snapshot {key:?} does not exist"),
        )),
    }
}

/// The snapshots of one snapshotter in `ns` matching any of `filters` (`kind`, `name`,
/// `parent`, `labels.*`).
pub fn list(
    r: &impl Read,
    ns: &str,
    snapshotter: &str,
    filters: &[&str],
) -> anyhow::Result<Vec<Snapshot>> {
    let f = Filter::parse_all(filters)?;
    let prefix = format!("{snapshotter}/");
    let mut out = Vec::new();
    for (k, raw) in r.scan_raw(SNAPSHOTS, ns)? {
        if !k.starts_with(&prefix) {
            continue;
        }
        let s: Snapshot = decode("snapshot", &raw)?;
        let field = |p: &[String]| match p {
            [f] if f == "kind" => Some(s.kind.as_str().to_owned()),
            [f] if f == "name" => Some(s.key.clone()),
            [f] if f == "parent" => Some(s.parent.clone()),
            [x, rest @ ..] if x == "labels" && !rest.is_empty() => {
                s.labels.get(&rest.join(".")).cloned()
            }
            _ => None,
        };
        if f.matches(&field) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Record a new snapshot; AlreadyExists when the key is taken, NotFound when a parent is
/// named that does not exist, FailedPrecondition when the parent is not committed.
pub fn create(tx: &Tx, ns: &str, mut s: Snapshot) -> anyhow::Result<Snapshot> {
    if s.key.is_empty() || s.snapshotter.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "snapshot key and snapshotter must be set",
        ));
    }
    validate_labels(&s.labels)?;
    namespaces::ensure(tx, ns)?;
    let k = table_key(&s.snapshotter, &s.key);
    if tx.get_raw(SNAPSHOTS, ns, &k)?.is_some() {
        return Err(err(
            ErrorKind::AlreadyExists,
            format!("snapshot {:?}", s.key),
        ));
    }
    if !s.parent.is_empty() {
        let p = get(tx, ns, &s.snapshotter, &s.parent)
            .map_err(|e| e.context(format!("parent of snapshot {:?}", s.key)))?;
        if p.kind != Kind::Committed {
            return Err(err(
                ErrorKind::FailedPrecondition,
                format!("parent {:?} is not a committed snapshot", s.parent),
            ));
        }
    }
    let now = now_nanos();
    s.created_at = now;
    s.updated_at = now;
    tx.put_raw(SNAPSHOTS, ns, &k, &encode(&s)?)?;
    Ok(s)
}

/// Update labels (`labels`, `labels.<k>`; none = all); other fields are immutable.
pub fn update(tx: &Tx, ns: &str, s: &Snapshot, paths: &[&str]) -> anyhow::Result<Snapshot> {
    let mut cur = get(tx, ns, &s.snapshotter, &s.key)?;
    if paths.is_empty() {
        cur.labels = s.labels.clone();
    } else if let Some(p) = apply_label_paths(&mut cur.labels, &s.labels, paths, "labels").first() {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("cannot update {p:?} field on snapshot {:?}", s.key),
        ));
    }
    validate_labels(&cur.labels)?;
    cur.updated_at = now_nanos();
    tx.put_raw(
        SNAPSHOTS,
        ns,
        &table_key(&cur.snapshotter, &cur.key),
        &encode(&cur)?,
    )?;
    Ok(cur)
}

/// containerd's `Commit` on the records: the active snapshot `key` becomes the committed
/// snapshot `name` (same parent and backing, `labels` given), in one transaction with the
/// removal of the active record. NotFound when `key` is absent, FailedPrecondition when it is
/// not active, AlreadyExists when `name` is taken.
pub fn commit(
    tx: &Tx,
    ns: &str,
    snapshotter: &str,
    key: &str,
    name: &str,
    labels: Labels,
) -> anyhow::Result<Snapshot> {
    let active = get(tx, ns, snapshotter, key)?;
    if active.kind != Kind::Active {
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!("snapshot {key:?} is not active"),
        ));
    }
    tx.remove_raw(SNAPSHOTS, ns, &table_key(snapshotter, key))?;
    create(
        tx,
        ns,
        Snapshot {
            key: name.to_owned(),
            kind: Kind::Committed,
            labels,
            ..active
        },
    )
}

/// Delete; NotFound when absent, FailedPrecondition while another snapshot has it as parent.
pub fn delete(tx: &Tx, ns: &str, snapshotter: &str, key: &str) -> anyhow::Result<Snapshot> {
    let cur = get(tx, ns, snapshotter, key)?;
    let children = list(tx, ns, snapshotter, &[])?
        .into_iter()
        .filter(|c| c.parent == key)
        .count();
    if children > 0 {
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!("cannot remove snapshot {key:?} with {children} children"),
        ));
    }
    tx.remove_raw(SNAPSHOTS, ns, &table_key(snapshotter, key))?;
    Ok(cur)
}
