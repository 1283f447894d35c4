//! The content store as one namespace sees it (containerd's metadata content store over the
//! local store): blobs are shared on disk, but a namespace sees only those it holds a record
//! of, with its own labels; ingest refs are namespaced (the backing ref is `<ns>/<ref>`);
//! a commit under a lease adds the blob to the lease in the same transaction as the record.
//!
//! Crash windows: a blob committed on disk whose record was not written yet is invisible
//! to every namespace and collected by garbage collection, or adopted by the next writer of
//! it (the store answers AlreadyExists and the record is added then).

use crate::content::{Digest, Reader, Status, Store, Writer};
use crate::errdefs::{err, kind_of, ErrorKind};
use crate::metadata::content::{self, ContentRecord};
use crate::metadata::db::Database;
use crate::metadata::encoding::Labels;
use crate::metadata::leases::{self, Resource};

/// A namespace's view of the content store, optionally under a lease.
pub struct NamespacedContent<'a> {
    /// The metadata database.
    pub db: &'a Database,
    /// The shared blob store.
    pub store: &'a Store,
    /// The namespace.
    pub ns: String,
    /// The lease new content is added to, if any.
    pub lease: Option<String>,
}

impl NamespacedContent<'_> {
    fn backing_ref(&self, ref_: &str) -> String {
        format!("{}/{ref_}", self.ns)
    }

    fn record(&self, digest: Digest, size: u64, labels: Labels) -> anyhow::Result<()> {
        self.db.update(|tx| {
            if let Some(l) = &self.lease {
                leases::add_resource(
                    tx,
                    &self.ns,
                    l,
                    Resource {
                        id: digest.to_string(),
                        kind: "content".into(),
                    },
                )?;
            }
            content::add(tx, &self.ns, digest, size, labels).map(|_| ())
        })
    }

    /// Open a writer for `ref_`. AlreadyExists when the namespace holds `expected`; when
    /// only another namespace (or an orphan) has it on disk, the namespace adopts it and
    /// the answer is AlreadyExists too (nothing to write).
    pub fn writer(
        &self,
        ref_: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> anyhow::Result<Writer> {
        let _gc = self.db.gc_shared();
        if let Some(d) = expected {
            if self.db.view(|v| content::info(v, &self.ns, &d)).is_ok() {
                // The lease takes the existing blob (containerd's metadata writer does), so
                // a collection in the caller's lease never removes what it skipped writing.
                if let Some(l) = &self.lease {
                    self.db.update(|tx| {
                        leases::add_resource(
                            tx,
                            &self.ns,
                            l,
                            Resource {
                                id: d.to_string(),
                                kind: "content".into(),
                            },
                        )
                    })?;
                }
                return Err(err(ErrorKind::AlreadyExists, format!("content {d}")));
            }
        }
        if let Some(l) = &self.lease {
            // The ingest is the lease's too, as containerd's metadata writer records it.
            self.db.update(|tx| {
                leases::add_resource(
                    tx,
                    &self.ns,
                    l,
                    Resource {
                        id: ref_.to_owned(),
                        kind: "ingests".into(),
                    },
                )
            })?;
        }
        match self.store.writer(&self.backing_ref(ref_), total, expected) {
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
                if let Some(d) = expected {
                    let info = self.store.info(&d)?;
                    self.record(d, info.size, Labels::new())?;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// The size of `expected` when its bytes are on disk (of `total` bytes, or any size
    /// when `total` is 0) but the namespace holds no record of it: containerd's shared
    /// content policy (its default) then opens a writer without an ingest, at offset =
    /// size, whose commit adds the blob with the commit's labels ([`Self::adopt`]).
    pub fn shared_elsewhere(&self, expected: &Digest, total: u64) -> Option<u64> {
        if self
            .db
            .view(|v| content::info(v, &self.ns, expected))
            .is_ok()
        {
            return None;
        }
        let on_disk = self.store.info(expected).ok()?;
        (total == 0 || total == on_disk.size).then_some(on_disk.size)
    }

    /// Record the bytes of `d` already on disk in the namespace with `labels` (and in the
    /// lease): the commit of a writer opened on shared content. AlreadyExists when the
    /// namespace holds it already.
    pub fn adopt(&self, d: Digest, labels: Labels) -> anyhow::Result<u64> {
        let _gc = self.db.gc_shared();
        if self.db.view(|v| content::info(v, &self.ns, &d)).is_ok() {
            return Err(err(ErrorKind::AlreadyExists, format!("content {d}")));
        }
        let on_disk = self.store.info(&d)?;
        self.record(d, on_disk.size, labels)?;
        Ok(on_disk.size)
    }

    /// Commit a writer opened here, recording the blob (with `labels`) in the namespace.
    /// AlreadyExists when the namespace already holds it.
    pub fn commit(
        &self,
        w: Writer,
        size: u64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> anyhow::Result<Digest> {
        let _gc = self.db.gc_shared();
        let prefix = format!("{}/", self.ns);
        let ingest_ref = w
            .ref_()
            .strip_prefix(&prefix)
            .unwrap_or(w.ref_())
            .to_owned();
        // The writer's AlreadyExists comes after its size and digest checks: the bytes
        // written are `written`, already on disk through another ref or namespace. Adopt
        // them, also when the caller named no digest (ctr 1.6's import commits with none).
        let written = w.digest();
        let d = match w.commit(size, expected) {
            Ok(d) => d,
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => written,
            Err(e) => return Err(e),
        };
        let on_disk = self.store.info(&d)?;
        if let Some(l) = &self.lease {
            // The ingest is done: the lease now holds the blob instead (containerd's
            // `removeIngestLease`); done in its own transaction before the record's.
            let ingest = Resource {
                id: ingest_ref,
                kind: "ingests".into(),
            };
            self.db
                .update(|tx| leases::delete_resource(tx, &self.ns, l, &ingest))?;
        }
        self.record(d, on_disk.size, labels)?;
        Ok(d)
    }

    /// The namespace's record of a blob; NotFound when it does not hold it (or the blob is
    /// gone from disk).
    pub fn info(&self, d: &Digest) -> anyhow::Result<ContentRecord> {
        let rec = self.db.view(|v| content::info(v, &self.ns, d))?;
        self.store.info(d)?;
        Ok(rec)
    }

    /// Read a blob the namespace holds.
    pub fn reader(&self, d: &Digest) -> anyhow::Result<Reader> {
        self.db.view(|v| content::info(v, &self.ns, d))?;
        self.store.reader(d)
    }

    /// Update the namespace's labels on a blob.
    pub fn update(
        &self,
        d: &Digest,
        labels: &Labels,
        paths: &[&str],
    ) -> anyhow::Result<ContentRecord> {
        self.db
            .update(|tx| content::update(tx, &self.ns, d, labels, paths))
    }

    /// The namespace's blobs matching `filters`.
    pub fn walk(&self, filters: &[&str]) -> anyhow::Result<Vec<ContentRecord>> {
        self.db.view(|v| content::list(v, &self.ns, filters))
    }

    /// Drop the namespace's hold (the bytes go at garbage collection when nobody holds them).
    pub fn delete(&self, d: &Digest) -> anyhow::Result<()> {
        self.db.update(|tx| content::delete(tx, &self.ns, d))
    }

    /// The namespace's ingest `ref_`.
    pub fn status(&self, ref_: &str) -> anyhow::Result<Status> {
        let mut s = self.store.status(&self.backing_ref(ref_))?;
        s.ref_ = ref_.to_owned();
        Ok(s)
    }

    /// The namespace's ingests (refs shown without the namespace prefix), `ref` filters
    /// applying to those names.
    pub fn list_statuses(&self, filters: &[&str]) -> anyhow::Result<Vec<Status>> {
        let f = crate::metadata::filter::Filter::parse_all(filters)?;
        let prefix = format!("{}/", self.ns);
        let mut out = Vec::new();
        for mut s in self.store.list_statuses(&[])? {
            let Some(r) = s.ref_.strip_prefix(&prefix).map(str::to_owned) else {
                continue;
            };
            s.ref_ = r;
            let field = |p: &[String]| match p {
                [x] if x == "ref" => Some(s.ref_.clone()),
                _ => None,
            };
            if f.matches(&field) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Abort the namespace's ingest `ref_`.
    pub fn abort(&self, ref_: &str) -> anyhow::Result<()> {
        self.store.abort(&self.backing_ref(ref_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tests::TempDir;
    use std::io::Write;

    #[test]
    fn namespaces_share_bytes_not_visibility() {
        let t = TempDir::new("nscontent");
        let store = Store::open(t.0.join("content")).unwrap();
        let db = Database::open(&t.0.join("meta.db")).unwrap();
        db.update(|tx| leases::create(tx, "a", "pull", Labels::new()).map(|_| ()))
            .unwrap();
        let a = NamespacedContent {
            db: &db,
            store: &store,
            ns: "a".into(),
            lease: Some("pull".into()),
        };
        let b = NamespacedContent {
            db: &db,
            store: &store,
            ns: "b".into(),
            lease: None,
        };
        let data = b"layer bytes";
        let d = Digest::of(data);

        let mut w = a.writer("layer-1", data.len() as u64, Some(d)).unwrap();
        w.write_all(&data[..4]).unwrap();
        drop(w);
        assert_eq!(a.list_statuses(&[]).unwrap()[0].ref_, "layer-1");
        assert!(
            b.list_statuses(&[]).unwrap().is_empty(),
            "ingests are per namespace"
        );
        assert_eq!(a.status("layer-1").unwrap().offset, 4);
        let lease = db.view(|v| leases::get(v, "a", "pull")).unwrap();
        assert_eq!(
            lease.resources,
            vec![Resource {
                id: "layer-1".into(),
                kind: "ingests".into()
            }]
        );
        let mut w = a.writer("layer-1", data.len() as u64, Some(d)).unwrap();
        w.write_all(&data[4..]).unwrap();
        let labels: Labels = [("containerd.io/gc.root".to_string(), "x".to_string())].into();
        a.commit(w, data.len() as u64, Some(d), labels.clone())
            .unwrap();
        assert_eq!(a.info(&d).unwrap().labels, labels);
        let lease = db.view(|v| leases::get(v, "a", "pull")).unwrap();
        assert_eq!(
            lease.resources,
            vec![Resource {
                id: d.to_string(),
                kind: "content".into()
            }]
        );

        // b cannot see it, but writing it adopts the bytes without a copy
        assert_eq!(kind_of(&b.info(&d).unwrap_err()), ErrorKind::NotFound);
        assert_eq!(kind_of(&b.reader(&d).unwrap_err()), ErrorKind::NotFound);
        let e = b.writer("x", data.len() as u64, Some(d)).unwrap_err();
        assert_eq!(kind_of(&e), ErrorKind::AlreadyExists);
        assert!(
            b.info(&d).unwrap().labels.is_empty(),
            "b has its own labels"
        );
        assert_eq!(b.reader(&d).unwrap().read_all(100).unwrap(), data);
        assert_eq!(
            kind_of(&a.writer("y", 0, Some(d)).unwrap_err()),
            ErrorKind::AlreadyExists
        );

        b.delete(&d).unwrap();
        assert!(a.info(&d).is_ok(), "a still holds it");
        assert_eq!(
            a.walk(&["labels.\"containerd.io/gc.root\"==x"])
                .unwrap()
                .len(),
            1
        );
        a.abort("layer-1").unwrap_err();
    }
}
