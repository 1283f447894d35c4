//! containerd.services.snapshots.v1.Snapshots for the `overlayfs` and `native`
//! snapshotters, namespaced as containerd's metadata snapshotter: the key a client sees is
//! its namespace's record (`metadata::snapshots`), which names a backing snapshot
//! (`<ns>/<seq>/<key>`, see `daemon::snapshotters`). The `containerd-lease` header adds new
//! snapshots to the lease. Publishes `/snapshot/prepare`, `/snapshot/commit` and
//! `/snapshot/remove`.
//!
//! Order of changes: a new backing snapshot is made first and its record written after
//! (removed again if the record fails), so a crash leaves at most an unnamed backing
//! snapshot, which Cleanup (and garbage collection) removes; a removed record's backing
//! snapshot is removed after the record is gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::events::{SnapshotCommit, SnapshotPrepare, SnapshotRemove};
use crate::api::namespace;
use crate::api::services::snapshots::v1::snapshots_server::{Snapshots, SnapshotsServer};
use crate::api::services::snapshots::v1::{
    CleanupRequest, CommitSnapshotRequest, Info, Kind as ApiKind, ListSnapshotsRequest,
    ListSnapshotsResponse, MountsRequest, MountsResponse, PrepareSnapshotRequest,
    PrepareSnapshotResponse, RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse,
    UpdateSnapshotRequest, UpdateSnapshotResponse, UsageRequest, UsageResponse,
    ViewSnapshotRequest, ViewSnapshotResponse,
};
use crate::daemon::context::Daemon;
use crate::daemon::services::convert::{labels_in, labels_out, mount_out, timestamp_nanos};
use crate::daemon::services::plumbing::{blocking, lease_of, ChannelStream};
use crate::linux::mount::Mount;
use crate::metadata::leases::{self, Resource};
use crate::metadata::snapshots::{self, Kind, Snapshot};

/// Infos per List message, as containerd batches them.
const LIST_BATCH: usize = 100;

pub struct SnapshotsService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> SnapshotsServer<SnapshotsService> {
    SnapshotsServer::new(SnapshotsService { d: d.clone() })
}

fn kind_out(k: Kind) -> i32 {
    match k {
        Kind::View => ApiKind::View as i32,
        Kind::Active => ApiKind::Active as i32,
        Kind::Committed => ApiKind::Committed as i32,
    }
}

fn info_out(s: &Snapshot) -> Info {
    Info {
        name: s.key.clone(),
        parent: s.parent.clone(),
        kind: kind_out(s.kind),
        created_at: Some(timestamp_nanos(s.created_at)),
        updated_at: Some(timestamp_nanos(s.updated_at)),
        labels: labels_out(&s.labels),
    }
}

/// The lease resource of a snapshot (containerd's `snapshots/<snapshotter>` kind).
fn lease_resource(snapshotter: &str, key: &str) -> Resource {
    Resource {
        id: key.to_owned(),
        kind: format!("snapshots/{snapshotter}"),
    }
}

/// What Prepare and View ask for.
struct NewSnapshot<'a> {
    kind: Kind,
    snapshotter: &'a str,
    key: &'a str,
    parent: &'a str,
    labels: BTreeMap<String, String>,
}

/// Make an active snapshot or a view: the backing snapshot, then the record.
fn create(
    d: &Daemon,
    ns: &str,
    lease: Option<String>,
    new: NewSnapshot,
) -> anyhow::Result<Vec<Mount>> {
    let NewSnapshot {
        kind,
        snapshotter,
        key,
        parent,
        labels,
    } = new;
    let sn = d.snapshotters.get(snapshotter)?;
    let parent_backing = if parent.is_empty() {
        String::new()
    } else {
        d.db.view(|v| snapshots::get(v, ns, snapshotter, parent))
            .map_err(|e| e.context(format!("failed to get parent snapshot {parent:?}")))?
            .backing
    };
    if d.db
        .view(|v| snapshots::get(v, ns, snapshotter, key))
        .is_ok()
    {
        return Err(crate::errdefs::err(
            crate::errdefs::ErrorKind::AlreadyExists,
            format!("snapshot {key:?}"),
        ));
    }
    let backing = d.snapshotters.backing_key(ns, key);
    let mounts = match kind {
        Kind::View => sn.view(&backing, &parent_backing, BTreeMap::new())?,
        _ => sn.prepare(&backing, &parent_backing, BTreeMap::new())?,
    };
    let recorded = d.db.update(|tx| {
        snapshots::create(
            tx,
            ns,
            Snapshot {
                snapshotter: snapshotter.to_owned(),
                key: key.to_owned(),
                backing: backing.clone(),
                parent: parent.to_owned(),
                kind,
                labels,
                created_at: 0,
                updated_at: 0,
            },
        )?;
        if let Some(l) = &lease {
            leases::add_resource(tx, ns, l, lease_resource(snapshotter, key))?;
        }
        Ok(())
    });
    if let Err(e) = recorded {
        let _ = sn.remove(&backing);
        return Err(e);
    }
    Ok(mounts)
}

#[tonic::async_trait]
impl Snapshots for SnapshotsService {
    async fn prepare(
        &self,
        req: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let ns = namespace::of(&req)?;
        let lease = lease_of(&req);
        let d = self.d.clone();
        let r = req.into_inner();
        let mounts = blocking(move || {
            let m = create(
                &d,
                &ns,
                lease,
                NewSnapshot {
                    kind: Kind::Active,
                    snapshotter: &r.snapshotter,
                    key: &r.key,
                    parent: &r.parent,
                    labels: labels_in(&r.labels),
                },
            )?;
            d.events.publish(
                &ns,
                "/snapshot/prepare",
                &SnapshotPrepare {
                    key: r.key.clone(),
                    parent: r.parent.clone(),
                    snapshotter: r.snapshotter.clone(),
                },
            );
            Ok(m)
        })
        .await?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts.iter().map(mount_out).collect(),
        }))
    }

    async fn view(
        &self,
        req: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let ns = namespace::of(&req)?;
        let lease = lease_of(&req);
        let d = self.d.clone();
        let r = req.into_inner();
        let mounts = blocking(move || {
            create(
                &d,
                &ns,
                lease,
                NewSnapshot {
                    kind: Kind::View,
                    snapshotter: &r.snapshotter,
                    key: &r.key,
                    parent: &r.parent,
                    labels: labels_in(&r.labels),
                },
            )
        })
        .await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts.iter().map(mount_out).collect(),
        }))
    }

    async fn mounts(
        &self,
        req: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let mounts = blocking(move || {
            let sn = d.snapshotters.get(&r.snapshotter)?;
            let rec =
                d.db.view(|v| snapshots::get(v, &ns, &r.snapshotter, &r.key))?;
            sn.mounts(&rec.backing)
        })
        .await?;
        Ok(Response::new(MountsResponse {
            mounts: mounts.iter().map(mount_out).collect(),
        }))
    }

    async fn commit(&self, req: Request<CommitSnapshotRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let lease = lease_of(&req);
        let d = self.d.clone();
        let r = req.into_inner();
        blocking(move || {
            let sn = d.snapshotters.get(&r.snapshotter)?;
            let backing = d.snapshotters.backing_key(&ns, &r.name);
            d.db.update(|tx| {
                let active = snapshots::get(tx, &ns, &r.snapshotter, &r.key)?;
                if active.kind != Kind::Active {
                    return Err(crate::errdefs::err(
                        crate::errdefs::ErrorKind::FailedPrecondition,
                        format!("snapshot {:?} is not active", r.key),
                    ));
                }
                snapshots::delete(tx, &ns, &r.snapshotter, &r.key)?;
                // The committed snapshot has the labels the commit names (containerd's).
                snapshots::create(
                    tx,
                    &ns,
                    Snapshot {
                        key: r.name.clone(),
                        backing: backing.clone(),
                        kind: Kind::Committed,
                        labels: labels_in(&r.labels),
                        ..active.clone()
                    },
                )?;
                if let Some(l) = &lease {
                    leases::add_resource(tx, &ns, l, lease_resource(&r.snapshotter, &r.name))?;
                }
                sn.commit(&backing, &active.backing, BTreeMap::new())
            })?;
            d.events.publish(
                &ns,
                "/snapshot/commit",
                &SnapshotCommit {
                    key: r.key.clone(),
                    name: r.name.clone(),
                    snapshotter: r.snapshotter.clone(),
                },
            );
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn remove(&self, req: Request<RemoveSnapshotRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        blocking(move || {
            let sn = d.snapshotters.get(&r.snapshotter)?;
            let rec =
                d.db.update(|tx| snapshots::delete(tx, &ns, &r.snapshotter, &r.key))?;
            // The record is gone; a backing snapshot that cannot go now is Cleanup's.
            let _ = sn.remove(&rec.backing);
            d.events.publish(
                &ns,
                "/snapshot/remove",
                &SnapshotRemove {
                    key: r.key.clone(),
                    snapshotter: r.snapshotter.clone(),
                },
            );
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let rec = blocking(move || {
            d.snapshotters.get(&r.snapshotter)?;
            d.db.view(|v| snapshots::get(v, &ns, &r.snapshotter, &r.key))
        })
        .await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_out(&rec)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let rec = blocking(move || {
            d.snapshotters.get(&r.snapshotter)?;
            let info = r.info.unwrap_or_default();
            let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            d.db.update(|tx| {
                let cur = snapshots::get(tx, &ns, &r.snapshotter, &info.name)?;
                let want = Snapshot {
                    labels: labels_in(&info.labels),
                    ..cur
                };
                snapshots::update(tx, &ns, &want, &paths)
            })
        })
        .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_out(&rec)),
        }))
    }

    type ListStream = ChannelStream<ListSnapshotsResponse>;

    async fn list(
        &self,
        req: Request<ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let list = blocking(move || {
            d.snapshotters.get(&r.snapshotter)?;
            let f: Vec<&str> = r.filters.iter().map(String::as_str).collect();
            d.db.view(|v| snapshots::list(v, &ns, &r.snapshotter, &f))
        })
        .await?;
        let batches = list
            .chunks(LIST_BATCH)
            .map(|c| ListSnapshotsResponse {
                info: c.iter().map(info_out).collect(),
            })
            .collect();
        Ok(Response::new(ChannelStream::of(batches)))
    }

    async fn usage(&self, req: Request<UsageRequest>) -> Result<Response<UsageResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let u = blocking(move || {
            let sn = d.snapshotters.get(&r.snapshotter)?;
            let rec =
                d.db.view(|v| snapshots::get(v, &ns, &r.snapshotter, &r.key))?;
            sn.usage(&rec.backing)
        })
        .await?;
        Ok(Response::new(UsageResponse {
            size: u.size as i64,
            inodes: u.inodes as i64,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let d = self.d.clone();
        let r = req.into_inner();
        blocking(move || d.snapshotters.cleanup(&d.db, &r.snapshotter)).await?;
        Ok(Response::new(()))
    }
}
