//! containerd.services.namespaces.v1.Namespaces: Get, List, Create, Update (labels by field
//! mask `labels.<key>`, or all of them without a mask; an unknown namespace is made, as
//! containerd's), Delete (only of an empty namespace: FailedPrecondition otherwise), publishing
//! `/namespaces/create|update|delete` as containerd's: a creation and an update in the
//! caller's namespace (its `containerd-namespace` header, as containerd's publisher takes
//! it from the request context; the target namespace when the caller sent none), a
//! deletion in the deleted namespace; an update's event carries the labels the request
//! sent.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::events::{NamespaceCreate, NamespaceDelete, NamespaceUpdate};
use crate::api::services::namespaces::v1::namespaces_server::{Namespaces, NamespacesServer};
use crate::api::services::namespaces::v1::*;
use crate::daemon::context::Daemon;
use crate::daemon::services::{blocking, labels_in, labels_out, mask_paths};
use crate::errdefs::{err, kind_of, ErrorKind};
use crate::metadata::db::encode;
use crate::metadata::encoding::validate_labels;
use crate::metadata::namespaces::{self, Namespace as Record};

pub struct NamespacesService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> NamespacesServer<NamespacesService> {
    super::limited!(NamespacesServer::new(NamespacesService { d: d.clone() }), d)
}

fn out(name: String, labels: crate::metadata::encoding::Labels) -> Namespace {
    Namespace {
        name,
        labels: labels_out(labels),
    }
}

#[tonic::async_trait]
impl Namespaces for NamespacesService {
    async fn get(
        &self,
        r: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let name = r.into_inner().name;
        let db = self.d.db.clone();
        // containerd's Get answers a namespace that does not exist with no labels rather
        // than NotFound (its store reads a missing labels bucket as empty), and clients rely
        // on it: containerd's Go client reads the default-runtime label of its namespace
        // before anything creates it (dockerd's `moby` on first start).
        let ns = blocking(move || {
            let labels = db.view(|v| match namespaces::labels(v, &name) {
                Err(e) if kind_of(&e) == ErrorKind::NotFound => Ok(Default::default()),
                r => r,
            })?;
            Ok(out(name, labels))
        })
        .await?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(ns),
        }))
    }

    async fn list(
        &self,
        _: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let db = self.d.db.clone();
        let list = blocking(move || {
            db.view(|v| {
                let mut all = Vec::new();
                for name in namespaces::list(v)? {
                    let labels = namespaces::labels(v, &name)?;
                    all.push(out(name, labels));
                }
                Ok(all)
            })
        })
        .await?;
        Ok(Response::new(ListNamespacesResponse { namespaces: list }))
    }

    async fn create(
        &self,
        r: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let caller = crate::api::namespace::of(&r).ok();
        let ns = r
            .into_inner()
            .namespace
            .ok_or_else(|| Status::invalid_argument("namespace must not be nil"))?;
        let db = self.d.db.clone();
        let (name, labels) = (ns.name.clone(), labels_in(ns.labels.clone()));
        blocking(move || db.update(|tx| namespaces::create(tx, &name, labels))).await?;
        self.d.events.publish(
            caller.as_deref().unwrap_or(&ns.name),
            "/namespaces/create",
            &NamespaceCreate {
                name: ns.name.clone(),
                labels: ns.labels.clone(),
            },
        );
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(ns),
        }))
    }

    async fn update(
        &self,
        r: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let caller = crate::api::namespace::of(&r).ok();
        let r = r.into_inner();
        let ns = r
            .namespace
            .ok_or_else(|| Status::invalid_argument("namespace must not be nil"))?;
        let paths = mask_paths(r.update_mask);
        let db = self.d.db.clone();
        let name = ns.name.clone();
        let sent = ns.labels.clone();
        let want = labels_in(ns.labels);
        let labels = blocking(move || {
            db.update(|tx| {
                // As containerd's: an update of a namespace that does not exist makes it
                // (its labels are written into a bucket created on demand).
                namespaces::ensure(tx, &name)?;
                let mut cur = namespaces::labels(tx, &name)?;
                if paths.is_empty() {
                    // No mask: the labels are replaced as a whole.
                    cur = want;
                } else {
                    // Only `labels.<key>` paths (containerd refuses even `labels`).
                    for p in &paths {
                        let Some(key) = p.strip_prefix("labels.") else {
                            return Err(err(
                                ErrorKind::InvalidArgument,
                                format!("cannot update {p:?} field on namespace {name:?}"),
                            ));
                        };
                        match want.get(key).filter(|v| !v.is_empty()) {
                            Some(v) => cur.insert(key.to_owned(), v.clone()),
                            None => cur.remove(key),
                        };
                    }
                }
                validate_labels(&cur)?;
                tx.put_namespace_raw(
                    &name,
                    &encode(&Record {
                        labels: cur.clone(),
                    })?,
                )?;
                Ok(cur)
            })
        })
        .await?;
        let labels = labels_out(labels);
        self.d.events.publish(
            caller.as_deref().unwrap_or(&ns.name),
            "/namespaces/update",
            &NamespaceUpdate {
                name: ns.name.clone(),
                labels: sent,
            },
        );
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(Namespace {
                name: ns.name,
                labels,
            }),
        }))
    }

    async fn delete(&self, r: Request<DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        let name = r.into_inner().name;
        let db = self.d.db.clone();
        let n = name.clone();
        blocking(move || db.update(|tx| namespaces::delete(tx, &n))).await?;
        // containerd publishes a deletion in the deleted namespace.
        let event = NamespaceDelete { name: name.clone() };
        self.d.events.publish(&name, "/namespaces/delete", &event);
        Ok(Response::new(()))
    }
}
