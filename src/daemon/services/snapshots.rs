//! containerd.services.snapshots.v1.Snapshots for the `overlayfs` and `native`
//! snapshotters, namespaced as containerd's metadata snapshotter: the key a client sees is
//! its namespace's (`daemon::snapshotters`: one snapshotter view per namespace, its records
//! in the metadata database). The `containerd-lease` header adds new snapshots (prepared,
//! viewed, committed) to the lease. Publishes `/snapshot/prepare`, `/snapshot/commit` and
//! `/snapshot/remove`.
//!
//! A snapshot's directory is made under a temporary name and renamed into place before its
//! record is saved, so a crash leaves at most a directory no record names, which Cleanup
//! removes; a removed record's directory goes right after it (garbage collection's through
//! the snapshot collector).

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

/// Add `key` of `snapshotter` to the request's lease, if it names one.
fn lease_add(
    d: &Daemon,
    ns: &str,
    lease: &Option<String>,
    snapshotter: &str,
    key: &str,
) -> anyhow::Result<()> {
    match lease {
        Some(l) => {
            d.db.update(|tx| leases::add_resource(tx, ns, l, lease_resource(snapshotter, key)))
        }
        None => Ok(()),
    }
}

fn info_of(i: &crate::snapshot::Info, snapshotter: &str) -> Snapshot {
    Snapshot {
        snapshotter: snapshotter.to_owned(),
        key: i.name.clone(),
        backing: String::new(),
        parent: i.parent.clone(),
        kind: match i.kind {
            crate::snapshot::Kind::View => Kind::View,
            crate::snapshot::Kind::Active => Kind::Active,
            crate::snapshot::Kind::Committed => Kind::Committed,
        },
        labels: i.labels.clone(),
        created_at: i64::try_from(i.created).unwrap_or(i64::MAX),
        updated_at: i64::try_from(i.updated).unwrap_or(i64::MAX),
        dir_id: None,
        usage: None,
    }
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
            // The lease takes the snapshot before the GC hold is let go: a collection
            // between the two would sweep it (nothing else refers to it yet).
            let m = {
                let c = d.snapshotters.change(&ns, &r.snapshotter)?;
                let m = c.sn.prepare(&r.key, &r.parent, labels_in(&r.labels))?;
                lease_add(&d, &ns, &lease, &r.snapshotter, &r.key)?;
                m
            };
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
            // The lease takes the snapshot before the GC hold is let go: a collection
            // between the two would sweep it (nothing else refers to it yet).
            let m = {
                let c = d.snapshotters.change(&ns, &r.snapshotter)?;
                let m = c.sn.view(&r.key, &r.parent, labels_in(&r.labels))?;
                lease_add(&d, &ns, &lease, &r.snapshotter, &r.key)?;
                m
            };
            Ok(m)
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
        let mounts =
            blocking(move || d.snapshotters.get(&ns, &r.snapshotter)?.mounts(&r.key)).await?;
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
            {
                let c = d.snapshotters.change(&ns, &r.snapshotter)?;
                c.sn.commit(&r.name, &r.key, labels_in(&r.labels))?;
                lease_add(&d, &ns, &lease, &r.snapshotter, &r.name)?;
            }
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
            d.snapshotters
                .change(&ns, &r.snapshotter)?
                .sn
                .remove(&r.key)?;
            // Its parents may be unreferenced now.
            d.gc.schedule();
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
            let i = d.snapshotters.get(&ns, &r.snapshotter)?.stat(&r.key)?;
            Ok(info_of(&i, &r.snapshotter))
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
            let info = r.info.unwrap_or_default();
            let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            let c = d.snapshotters.change(&ns, &r.snapshotter)?;
            let cur = c.sn.stat(&info.name)?;
            let want = crate::snapshot::Info {
                labels: labels_in(&info.labels),
                ..cur
            };
            let i = c.sn.update(&want, &paths)?;
            Ok(info_of(&i, &r.snapshotter))
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
            d.snapshotters.get(&ns, &r.snapshotter)?;
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
        let u = blocking(move || d.snapshotters.get(&ns, &r.snapshotter)?.usage(&r.key)).await?;
        Ok(Response::new(UsageResponse {
            size: u.size as i64,
            inodes: u.inodes as i64,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let d = self.d.clone();
        let r = req.into_inner();
        blocking(move || d.snapshotters.cleanup(&r.snapshotter)).await?;
        Ok(Response::new(()))
    }
}
