//! Garbage collection as containerd's (`metadata/gc.go`), mark and sweep per namespace:
//!
//! roots: every image's target; content and snapshots labelled `containerd.io/gc.root`;
//! container snapshots; the resources of leases that have not expired (expired leases are
//! deleted first). References followed from a marked item: content labels
//! `containerd.io/gc.ref.content[.<anything>]` (value a digest) and
//! `containerd.io/gc.ref.snapshot.<snapshotter>[/<anything>]` (value a snapshot key), the
//! same labels on snapshots and containers, and a snapshot's parent. A flat lease
//! (`containerd.io/gc.flat`) holds its resources but not what they reference.
//!
//! Swept: unmarked content records and snapshot records (returned, so the caller removes the
//! snapshotter's directories), then blobs on disk that no namespace holds, except blobs
//! committed after `keep_newer_than` (a commit in flight records its blob right after).
//! Ingests are left alone (an ingest is resumable work; `Abort` removes one).

use crate::content::{Digest, Store};
use crate::metadata::db::{
    decode, Database, Read, Tx, CONTAINERS, CONTENT, IMAGES, LEASES, SNAPSHOTS,
};
use crate::metadata::encoding::Labels;
use crate::metadata::{containers, content, images, leases, namespaces, snapshots};
use std::collections::{BTreeSet, HashSet};
use std::time::SystemTime;

/// Label marking a root.
pub const ROOT_LABEL: &str = "containerd.io/gc.root";
/// Prefix of content references.
pub const REF_CONTENT_PREFIX: &str = "containerd.io/gc.ref.content";
/// Prefix of snapshot references (`.<snapshotter>` follows).
pub const REF_SNAPSHOT_PREFIX: &str = "containerd.io/gc.ref.snapshot.";

/// What a collection removed.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Expired leases, as (namespace, id).
    pub leases: Vec<(String, String)>,
    /// Content records, as (namespace, digest).
    pub content: Vec<(String, Digest)>,
    /// Snapshot records: the caller removes their backing snapshots.
    pub snapshots: Vec<(String, snapshots::Snapshot)>,
    /// Blobs deleted from disk.
    pub blobs: Vec<Digest>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Node {
    Content(Digest),
    Snapshot(String, String),
}

/// The references in a set of labels.
fn label_refs(labels: &Labels, out: &mut Vec<Node>) {
    for (k, v) in labels {
        if let Some(rest) = k.strip_prefix(REF_CONTENT_PREFIX) {
            if rest.is_empty() || rest.starts_with('.') {
                if let Ok(d) = v.parse::<Digest>() {
                    out.push(Node::Content(d));
                }
            }
        } else if let Some(rest) = k.strip_prefix(REF_SNAPSHOT_PREFIX) {
            let snapshotter = rest.split('/').next().unwrap_or("");
            if !snapshotter.is_empty() && !v.is_empty() {
                out.push(Node::Snapshot(snapshotter.to_owned(), v.clone()));
            }
        }
    }
}

fn mark_namespace(
    tx: &Tx,
    ns: &str,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<HashSet<Node>> {
    let mut roots: Vec<Node> = Vec::new();
    let mut flat: Vec<Node> = Vec::new();
    for l in leases::list(tx, ns, &[])? {
        if l.expired(now) {
            tx.remove_raw(LEASES, ns, &l.id)?;
            report.leases.push((ns.to_owned(), l.id));
            continue;
        }
        let is_flat = l.labels.contains_key(leases::FLAT_LABEL);
        for r in &l.resources {
            let node = match r.kind.as_str() {
                "content" => r.id.parse().ok().map(Node::Content),
                k => k
                    .strip_prefix("snapshots/")
                    .map(|s| Node::Snapshot(s.to_owned(), r.id.clone())),
            };
            if let Some(n) = node {
                if is_flat {
                    flat.push(n);
                } else {
                    roots.push(n);
                }
            }
        }
    }
    for (_, raw) in tx.scan_raw(IMAGES, ns)? {
        let i: images::Image = decode("image", &raw)?;
        roots.push(Node::Content(i.target.digest));
    }
    for (_, raw) in tx.scan_raw(CONTAINERS, ns)? {
        let c: containers::Container = decode("container", &raw)?;
        if !c.snapshot_key.is_empty() {
            roots.push(Node::Snapshot(
                c.snapshotter.clone(),
                c.snapshot_key.clone(),
            ));
        }
        label_refs(&c.labels, &mut roots);
    }
    for (_, raw) in tx.scan_raw(CONTENT, ns)? {
        let c: content::ContentRecord = decode("content", &raw)?;
        if c.labels.contains_key(ROOT_LABEL) {
            roots.push(Node::Content(c.digest));
        }
    }
    for (_, raw) in tx.scan_raw(SNAPSHOTS, ns)? {
        let s: snapshots::Snapshot = decode("snapshot", &raw)?;
        if s.labels.contains_key(ROOT_LABEL) {
            roots.push(Node::Snapshot(s.snapshotter.clone(), s.key.clone()));
        }
    }

    let mut marked: HashSet<Node> = flat.into_iter().collect();
    let mut stack = roots;
    while let Some(n) = stack.pop() {
        if !marked.insert(n.clone()) {
            continue;
        }
        match &n {
            Node::Content(d) => {
                if let Some(raw) = tx.get_raw(CONTENT, ns, &d.to_string())? {
                    let c: content::ContentRecord = decode("content", &raw)?;
                    label_refs(&c.labels, &mut stack);
                }
            }
            Node::Snapshot(sn, key) => {
                if let Ok(s) = snapshots::get(tx, ns, sn, key) {
                    if !s.parent.is_empty() {
                        stack.push(Node::Snapshot(sn.clone(), s.parent.clone()));
                    }
                    label_refs(&s.labels, &mut stack);
                }
            }
        }
    }
    Ok(marked)
}

fn sweep_namespace(
    tx: &Tx,
    ns: &str,
    marked: &HashSet<Node>,
    report: &mut Report,
) -> anyhow::Result<()> {
    for (key, raw) in tx.scan_raw(CONTENT, ns)? {
        let c: content::ContentRecord = decode("content", &raw)?;
        if !marked.contains(&Node::Content(c.digest)) {
            tx.remove_raw(CONTENT, ns, &key)?;
            report.content.push((ns.to_owned(), c.digest));
        }
    }
    for (key, raw) in tx.scan_raw(SNAPSHOTS, ns)? {
        let s: snapshots::Snapshot = decode("snapshot", &raw)?;
        if !marked.contains(&Node::Snapshot(s.snapshotter.clone(), s.key.clone())) {
            tx.remove_raw(SNAPSHOTS, ns, &key)?;
            report.snapshots.push((ns.to_owned(), s));
        }
    }
    Ok(())
}

/// Collect garbage in every namespace and in the blob store, in one transaction (a failure
/// changes nothing in the database). Blob files are removed after the records, under the
/// exclusive GC hold, so no writer records a blob while it is being deleted.
pub fn collect(
    db: &Database,
    store: &Store,
    now: SystemTime,
    keep_newer_than: SystemTime,
) -> anyhow::Result<Report> {
    let _hold = db.gc_exclusive();
    let mut report = Report::default();
    let held: BTreeSet<Digest> = db.update(|tx| {
        for ns in namespaces::list(tx)? {
            let marked = mark_namespace(tx, &ns, now, &mut report)?;
            sweep_namespace(tx, &ns, &marked, &mut report)?;
        }
        let mut held = BTreeSet::new();
        for ns in namespaces::list(tx)? {
            for c in content::list(tx, &ns, &[])? {
                held.insert(c.digest);
            }
        }
        Ok(held)
    })?;
    let mut orphans = Vec::new();
    store.walk(|info| {
        if !held.contains(&info.digest) && info.created_at <= keep_newer_than {
            orphans.push(info.digest);
        }
        Ok(())
    })?;
    for d in orphans {
        match store.delete(&d) {
            Ok(()) => report.blobs.push(d),
            Err(e) if crate::metadata::kind_of(&e) == crate::metadata::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    report.blobs.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tests::TempDir;
    use crate::metadata::namespaced_content::NamespacedContent;
    use std::io::Write;
    use std::time::Duration;

    fn put(nc: &NamespacedContent, data: &[u8], labels: &[(&str, String)]) -> Digest {
        let d = Digest::of(data);
        let mut w = nc
            .writer(&d.to_string(), data.len() as u64, Some(d))
            .unwrap();
        w.write_all(data).unwrap();
        let l: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        nc.commit(w, data.len() as u64, Some(d), l).unwrap()
    }

    #[test]
    fn keeps_what_images_leases_and_roots_reach_and_collects_the_rest() {
        let t = TempDir::new("gc");
        let store = Store::open(t.0.join("content")).unwrap();
        let db = Database::open(&t.0.join("meta.db")).unwrap();
        let nc = NamespacedContent {
            db: &db,
            store: &store,
            ns: "default".into(),
            lease: None,
        };

        // an image: index -> manifest -> (config, layer), linked by gc.ref labels as a pull sets them
        let layer = put(&nc, b"layer", &[]);
        let config = put(&nc, b"config", &[]);
        let manifest = put(
            &nc,
            b"manifest",
            &[
                ("containerd.io/gc.ref.content.config", config.to_string()),
                ("containerd.io/gc.ref.content.l.0", layer.to_string()),
                (
                    "containerd.io/gc.ref.snapshot.overlayfs",
                    "sha256:chain".into(),
                ),
            ],
        );
        let index = put(
            &nc,
            b"index",
            &[("containerd.io/gc.ref.content.m.0", manifest.to_string())],
        );
        let snap = |key: &str, parent: &str| snapshots::Snapshot {
            snapshotter: "overlayfs".into(),
            key: key.into(),
            backing: key.into(),
            parent: parent.into(),
            kind: snapshots::Kind::Committed,
            labels: Labels::new(),
            created_at: 0,
            updated_at: 0,
            dir_id: None,
            usage: None,
        };
        db.update(|tx| {
            snapshots::create(tx, "default", snap("sha256:base", ""))?;
            snapshots::create(tx, "default", snap("sha256:chain", "sha256:base"))?;
            snapshots::create(tx, "default", snap("sha256:unused", ""))?;
            images::create(
                tx,
                "default",
                images::Image {
                    name: "docker.io/library/x:latest".into(),
                    target: images::Target {
                        media_type: crate::image::media_types::OCI_INDEX.into(),
                        digest: index,
                        size: 5,
                        annotations: Default::default(),
                    },
                    labels: Labels::new(),
                    created_at: 0,
                    updated_at: 0,
                },
            )
            .map(|_| ())
        })
        .unwrap();
        // garbage: a blob nobody references, and one only an expired lease holds
        let junk = put(&nc, b"junk", &[]);
        let past = crate::timefmt::format(SystemTime::now() - Duration::from_secs(5));
        db.update(|tx| {
            leases::create(
                tx,
                "default",
                "old",
                [(leases::EXPIRE_LABEL.to_string(), past)].into(),
            )
            .map(|_| ())
        })
        .unwrap();
        let leased_old = NamespacedContent {
            db: &db,
            store: &store,
            ns: "default".into(),
            lease: Some("old".into()),
        };
        let expired_blob = put(&leased_old, b"expired", &[]);
        // held by a live lease: kept
        db.update(|tx| leases::create(tx, "default", "live", Labels::new()).map(|_| ()))
            .unwrap();
        let leased = NamespacedContent {
            db: &db,
            store: &store,
            ns: "default".into(),
            lease: Some("live".into()),
        };
        let pulling = put(&leased, b"in flight", &[]);
        // a root label keeps content alone
        let rooted = put(&nc, b"rooted", &[(ROOT_LABEL, "1".into())]);
        // an orphan on disk (committed, record never written: a crash window)
        let mut w = store.writer("orphan", 0, None).unwrap();
        w.write_all(b"orphan").unwrap();
        let orphan = w.commit(0, None).unwrap();

        let now = SystemTime::now();
        let r = collect(&db, &store, now, now).unwrap();
        assert_eq!(r.leases, vec![("default".to_string(), "old".to_string())]);
        let mut gone: Vec<Digest> = r.content.iter().map(|(_, d)| *d).collect();
        gone.sort();
        let mut want = vec![junk, expired_blob];
        want.sort();
        assert_eq!(gone, want);
        let mut blobs_want = vec![junk, expired_blob, orphan];
        blobs_want.sort();
        assert_eq!(r.blobs, blobs_want);
        assert_eq!(
            r.snapshots
                .iter()
                .map(|(_, s)| s.key.as_str())
                .collect::<Vec<_>>(),
            ["sha256:unused"]
        );
        for d in [layer, config, manifest, index, pulling, rooted] {
            assert!(store.info(&d).is_ok() && nc.info(&d).is_ok(), "{d} kept");
        }
        for d in [junk, expired_blob, orphan] {
            assert!(store.info(&d).is_err(), "{d} deleted");
        }
        // deleting the image makes its whole tree collectable, except what is still leased
        db.update(|tx| images::delete(tx, "default", "docker.io/library/x:latest"))
            .unwrap();
        let r = collect(&db, &store, SystemTime::now(), SystemTime::now()).unwrap();
        assert_eq!(r.blobs.len(), 4);
        assert_eq!(r.snapshots.len(), 2);
        assert!(store.info(&pulling).is_ok() && store.info(&rooted).is_ok());
        // a blob shared with another namespace stays on disk while that namespace holds it
        let other = NamespacedContent {
            db: &db,
            store: &store,
            ns: "other".into(),
            lease: None,
        };
        let shared = put(&other, b"shared", &[(ROOT_LABEL, "1".into())]);
        let e = nc.writer("s", 6, Some(shared)).unwrap_err();
        assert_eq!(
            crate::metadata::kind_of(&e),
            crate::metadata::ErrorKind::AlreadyExists
        );
        let r = collect(&db, &store, SystemTime::now(), SystemTime::now()).unwrap();
        assert_eq!(r.content, vec![("default".to_string(), shared)]);
        assert!(r.blobs.is_empty());
        assert!(store.info(&shared).is_ok());
        // fresh blobs are spared by the grace cutoff
        let mut w = store.writer("fresh", 0, None).unwrap();
        w.write_all(b"fresh").unwrap();
        let fresh = w.commit(0, None).unwrap();
        let r = collect(
            &db,
            &store,
            SystemTime::now(),
            SystemTime::now() - Duration::from_secs(60),
        )
        .unwrap();
        assert!(!r.blobs.contains(&fresh));
        assert!(store.info(&fresh).is_ok());
    }
}
