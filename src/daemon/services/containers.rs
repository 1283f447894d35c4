//! containerd.services.containers.v1.Containers: Get, List and ListStream (containerd's
//! filters on `id`, `image`, `runtime.name`, `snapshotter`, `labels.*`), Create, Update
//! (field mask: `labels[.k]`, `extensions[.k]`, `spec`, `image`, `snapshotkey`), Delete,
//! publishing `/containers/create|update|delete`. The record keeps everything ctr and
//! dockerd store: the spec and runtime options as `Any` bytes untouched, extensions, times.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::{Request, Response, Status};

use crate::api::events::{container_create, ContainerCreate, ContainerDelete, ContainerUpdate};
use crate::api::services::containers::v1::containers_server::{Containers, ContainersServer};
use crate::api::services::containers::v1::*;
use crate::daemon::context::Daemon;
use crate::daemon::services::{blocking, labels_in, labels_out, mask_paths, timestamp};
use crate::metadata::containers as store;

pub struct ContainersService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> ContainersServer<ContainersService> {
    super::limited!(ContainersServer::new(ContainersService { d: d.clone() }), d)
}

fn any_in(a: prost_types::Any) -> store::Any {
    store::Any {
        type_url: a.type_url,
        value: a.value,
    }
}

fn any_out(a: store::Any) -> prost_types::Any {
    prost_types::Any {
        type_url: a.type_url,
        value: a.value,
    }
}

/// The API's container as the store keeps it (times are the store's to set).
pub fn record_of(c: Container) -> store::Container {
    let runtime = c.runtime.unwrap_or_default();
    store::Container {
        id: c.id,
        labels: labels_in(c.labels),
        image: c.image,
        runtime: store::Runtime {
            name: runtime.name,
            options: runtime.options.map(any_in),
        },
        spec: c.spec.map(any_in),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: 0,
        updated_at: 0,
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, any_in(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

/// A stored container as the API's.
pub fn api_of(c: store::Container) -> Container {
    Container {
        id: c.id,
        labels: labels_out(c.labels),
        image: c.image,
        runtime: Some(container::Runtime {
            name: c.runtime.name,
            options: c.runtime.options.map(any_out),
        }),
        spec: c.spec.map(any_out),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, any_out(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

impl ContainersService {
    async fn list_records(
        &self,
        ns: String,
        filters: Vec<String>,
    ) -> Result<Vec<Container>, Status> {
        let db = self.d.db.clone();
        blocking(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            let list = db.view(|v| store::list(v, &ns, &f))?;
            Ok(list.into_iter().map(api_of).collect())
        })
        .await
    }
}

/// ListStream's answer: the listed containers, one message each.
pub struct ContainerStream(std::vec::IntoIter<Container>);

impl tonic::codegen::tokio_stream::Stream for ContainerStream {
    type Item = Result<ListContainerMessage, Status>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(
            self.0
                .next()
                .map(|c| Ok(ListContainerMessage { container: Some(c) })),
        )
    }
}

#[tonic::async_trait]
impl Containers for ContainersService {
    async fn get(
        &self,
        r: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let id = r.into_inner().id;
        if id.is_empty() {
            return Err(Status::invalid_argument("container id must not be empty"));
        }
        let db = self.d.db.clone();
        let c = blocking(move || db.view(|v| store::get(v, &ns, &id))).await?;
        Ok(Response::new(GetContainerResponse {
            container: Some(api_of(c)),
        }))
    }

    async fn list(
        &self,
        r: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let containers = self.list_records(ns, r.into_inner().filters).await?;
        Ok(Response::new(ListContainersResponse { containers }))
    }

    type ListStreamStream = ContainerStream;

    async fn list_stream(
        &self,
        r: Request<ListContainersRequest>,
    ) -> Result<Response<ContainerStream>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let containers = self.list_records(ns, r.into_inner().filters).await?;
        Ok(Response::new(ContainerStream(containers.into_iter())))
    }

    async fn create(
        &self,
        r: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        // A new container's task usually follows (Docker creates no lease first): warm the
        // kernel's cgroup migration lock now (warmup.rs).
        crate::linux::cgroups::warmup::start();
        let c = r
            .into_inner()
            .container
            .ok_or_else(|| Status::invalid_argument("container must not be nil"))?;
        let db = self.d.db.clone();
        let rec = record_of(c);
        let n = ns.clone();
        let made = blocking(move || db.update(|tx| store::create(tx, &n, rec))).await?;
        self.d.events.publish(
            &ns,
            "/containers/create",
            &ContainerCreate {
                id: made.id.clone(),
                image: made.image.clone(),
                runtime: Some(container_create::Runtime {
                    name: made.runtime.name.clone(),
                    options: made.runtime.options.clone().map(any_out),
                }),
            },
        );
        Ok(Response::new(CreateContainerResponse {
            container: Some(api_of(made)),
        }))
    }

    async fn update(
        &self,
        r: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let r = r.into_inner();
        let c = r
            .container
            .ok_or_else(|| Status::invalid_argument("container must not be nil"))?;
        if c.id.is_empty() {
            return Err(Status::invalid_argument("container id must not be empty"));
        }
        let paths = mask_paths(r.update_mask);
        let db = self.d.db.clone();
        let rec = record_of(c);
        let n = ns.clone();
        let updated = blocking(move || {
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            db.update(|tx| store::update(tx, &n, rec, &refs))
        })
        .await?;
        self.d.events.publish(
            &ns,
            "/containers/update",
            &ContainerUpdate {
                id: updated.id.clone(),
                image: updated.image.clone(),
                labels: labels_out(updated.labels.clone()),
                snapshot_key: updated.snapshot_key.clone(),
            },
        );
        Ok(Response::new(UpdateContainerResponse {
            container: Some(api_of(updated)),
        }))
    }

    async fn delete(&self, r: Request<DeleteContainerRequest>) -> Result<Response<()>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let id = r.into_inner().id;
        if id.is_empty() {
            return Err(Status::invalid_argument("container id must not be empty"));
        }
        let db = self.d.db.clone();
        let (n, i) = (ns.clone(), id.clone());
        blocking(move || db.update(|tx| store::delete(tx, &n, &i))).await?;
        self.d
            .events
            .publish(&ns, "/containers/delete", &ContainerDelete { id });
        // Its snapshot (and what only it referenced) may be collectable now.
        self.d.gc.schedule();
        Ok(Response::new(()))
    }
}
