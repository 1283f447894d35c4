//! containerd.services.leases.v1.Leases: Create (an ID and labels, the expiry in
//! containerd's `containerd.io/gc.expire` label), Delete (with `sync`: waits for the
//! collection of what the lease held), List (filters on `id`, `labels.*`), and the lease's
//! resources (`content`, `ingests`, `snapshots/<snapshotter>`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::services::leases::v1::leases_server::{Leases, LeasesServer};
use crate::api::services::leases::v1::*;
use crate::daemon::context::Daemon;
use crate::daemon::services::{blocking, labels_in, labels_out, timestamp};
use crate::metadata::leases as store;

pub struct LeasesService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> LeasesServer<LeasesService> {
    super::limited!(LeasesServer::new(LeasesService { d: d.clone() }), d)
}

fn api_of(l: store::Lease) -> Lease {
    Lease {
        id: l.id,
        created_at: Some(timestamp(l.created_at)),
        labels: labels_out(l.labels),
    }
}

fn resource_in(r: Option<Resource>) -> Result<store::Resource, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("resource must not be nil"))?;
    Ok(store::Resource {
        id: r.id,
        kind: r.r#type,
    })
}

#[tonic::async_trait]
impl Leases for LeasesService {
    async fn create(&self, r: Request<CreateRequest>) -> Result<Response<CreateResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        // A client's lease is the first step of `ctr run` (and of a pull): a task's cgroup
        // join may follow within milliseconds, so start the kernel's migration-lock wait
        // now (warmup.rs; it is over before the snapshot and container records are).
        crate::linux::cgroups::warmup::start();
        let r = r.into_inner();
        let db = self.d.db.clone();
        let labels = labels_in(r.labels);
        let l = blocking(move || db.update(|tx| store::create(tx, &ns, &r.id, labels))).await?;
        Ok(Response::new(CreateResponse {
            lease: Some(api_of(l)),
        }))
    }

    async fn delete(&self, r: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let r = r.into_inner();
        let db = self.d.db.clone();
        let id = r.id.clone();
        blocking(move || db.update(|tx| store::delete(tx, &ns, &id))).await?;
        if r.sync {
            self.d
                .gc
                .collect_now(&self.d)
                .await
                .map_err(|e| crate::api::status::to_status(&e))?;
        } else {
            self.d.gc.schedule();
        }
        Ok(Response::new(()))
    }

    async fn list(&self, r: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let filters = r.into_inner().filters;
        let db = self.d.db.clone();
        let leases = blocking(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            db.view(|v| store::list(v, &ns, &f))
        })
        .await?;
        Ok(Response::new(ListResponse {
            leases: leases.into_iter().map(api_of).collect(),
        }))
    }

    async fn add_resource(&self, r: Request<AddResourceRequest>) -> Result<Response<()>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let r = r.into_inner();
        let res = resource_in(r.resource)?;
        let db = self.d.db.clone();
        blocking(move || db.update(|tx| store::add_resource(tx, &ns, &r.id, res))).await?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        r: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let r = r.into_inner();
        let res = resource_in(r.resource)?;
        let db = self.d.db.clone();
        blocking(move || db.update(|tx| store::delete_resource(tx, &ns, &r.id, &res))).await?;
        // What it held may be collectable now.
        self.d.gc.schedule();
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        r: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let id = r.into_inner().id;
        let db = self.d.db.clone();
        let l = blocking(move || db.view(|v| store::get(v, &ns, &id))).await?;
        Ok(Response::new(ListResourcesResponse {
            resources: l
                .resources
                .into_iter()
                .map(|r| Resource {
                    id: r.id,
                    r#type: r.kind,
                })
                .collect(),
        }))
    }
}
