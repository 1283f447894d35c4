//! containerd.services.transfer.v1.Transfer, as containerd 1.7 serves it
//! (`services/transfer`, `pkg/transfer/local`): one call moves an image from a source to a
//! destination, both given as `Any`, and the daemon does the work on its own disk.
//!
//! | source → destination | what runs |
//! |---|---|
//! | `OCIRegistry` → `ImageStore` | the pull ([`super::transfer_pull`]): lease, parallel download streamed into parallel unpack, image record last |
//! | `ImageImportStream` → `ImageStore` | an archive read from a stream ([`super::transfer_archive`]) |
//! | `ImageStore` → `ImageExportStream` | an archive written into a stream |
//! | `ImageStore` → `ImageStore` | a tag: the destination name gets the source's target |
//!
//! Anything else answers Unimplemented with containerd's words. Progress goes to the
//! stream `options.progress_stream` names (see [`ProgressSink`]); other streams (credentials,
//! archive bytes) are named inside the source or destination. Errors carry containerd's
//! gRPC codes (NotFound for an unknown stream or image, InvalidArgument for a bad
//! reference, …).
//!
//! The work runs on a blocking thread and goes on when the client leaves mid-transfer:
//! progress for a client that is gone is dropped, a pull finishes (its lease goes at the
//! end; a later collection takes what nothing holds), an import whose stream broke fails
//! and leaves no image record.

use std::sync::Arc;

use prost_types::Any;
use tonic::{Request, Response, Status};

use crate::api::namespace;
use crate::api::services::transfer::v1::transfer_server::{Transfer, TransferServer};
use crate::api::services::transfer::v1::TransferRequest;
use crate::api::types::transfer::{
    ImageExportStream, ImageImportStream, ImageStore, OciRegistry, Progress,
};
use crate::api::typeurl;
use crate::daemon::context::Daemon;
use crate::errdefs::ErrorKind;

use super::plumbing::blocking;
use super::streaming::{Stream, Streams};
use super::{transfer_archive, transfer_pull};

/// Where a transfer's progress goes: the client's progress stream, or nowhere.
pub struct ProgressSink {
    stream: Option<Stream>,
}

impl ProgressSink {
    pub fn none() -> ProgressSink {
        ProgressSink { stream: None }
    }

    /// Send one event (from a blocking thread). A client that went away gets nothing more;
    /// the transfer goes on.
    pub fn send(&self, p: Progress) {
        if let Some(s) = &self.stream {
            let _ = s.blocking_send(typeurl::pack(&p));
        }
    }

    /// An event without a name: ctr shows it as the status line.
    pub fn status(&self, event: String) {
        self.send(Progress {
            event,
            ..Default::default()
        });
    }

    /// True when somebody listens.
    pub fn wanted(&self) -> bool {
        self.stream.is_some()
    }
}

pub struct TransferService {
    d: Arc<Daemon>,
    streams: Arc<Streams>,
}

pub fn server(d: &Arc<Daemon>, streams: &Arc<Streams>) -> TransferServer<TransferService> {
    super::limited!(
        TransferServer::new(TransferService {
            d: d.clone(),
            streams: streams.clone(),
        }),
        d
    )
}

/// What a source or destination `Any` holds.
enum Object {
    Registry(OciRegistry),
    Store(ImageStore),
    Import(ImageImportStream),
    Export(ImageExportStream),
    Other,
}

fn object(a: &Any) -> Result<Object, Status> {
    let bad = |e: anyhow::Error| Status::invalid_argument(format!("{e:#}"));
    Ok(if typeurl::is::<OciRegistry>(a) {
        Object::Registry(typeurl::unpack(a).map_err(bad)?)
    } else if typeurl::is::<ImageStore>(a) {
        Object::Store(typeurl::unpack(a).map_err(bad)?)
    } else if typeurl::is::<ImageImportStream>(a) {
        Object::Import(typeurl::unpack(a).map_err(bad)?)
    } else if typeurl::is::<ImageExportStream>(a) {
        Object::Export(typeurl::unpack(a).map_err(bad)?)
    } else {
        Object::Other
    })
}

impl TransferService {
    fn take(&self, ns: &str, id: &str) -> Result<Stream, Status> {
        self.streams
            .take(ns, id)
            .map_err(|e| crate::api::status::to_status(&e))
    }
}

#[tonic::async_trait]
impl Transfer for TransferService {
    async fn transfer(&self, req: Request<TransferRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let r = req.into_inner();
        let progress = match r.options.as_ref().map(|o| o.progress_stream.as_str()) {
            Some(id) if !id.is_empty() => ProgressSink {
                stream: Some(self.take(&ns, id)?),
            },
            _ => ProgressSink::none(),
        };
        let (Some(src), Some(dst)) = (r.source, r.destination) else {
            return Err(Status::invalid_argument(
                "a transfer needs a source and a destination",
            ));
        };
        let d = self.d.clone();
        // Pulls and imports end by deleting their leases; what those held and nothing
        // else does is collected before the answer, as a client's synchronous lease
        // delete (ctr 1.6's `WithLease`) collects it: the stores a client sees right after
        // a Transfer are those after its client-side equivalent.
        let (result, collect) = match (object(&src)?, object(&dst)?) {
            (Object::Registry(reg), Object::Store(store)) => {
                crate::daemon::log::info(&format!(
                    "transfer: pull {} into image {:?} (namespace {ns})",
                    reg.reference, store.name
                ));
                let auth = match reg.resolver.as_ref().map(|r| r.auth_stream.as_str()) {
                    Some(id) if !id.is_empty() => Some(self.take(&ns, id)?),
                    _ => None,
                };
                let r =
                    blocking(move || transfer_pull::pull(&d, &ns, &reg, &store, auth, &progress))
                        .await;
                (r, true)
            }
            (Object::Import(import), Object::Store(store)) => {
                crate::daemon::log::info(&format!(
                    "transfer: import from stream {} (namespace {ns})",
                    import.stream
                ));
                let stream = self.take(&ns, &import.stream)?;
                let r = blocking(move || {
                    transfer_archive::import(&d, &ns, &import, stream, &store, &progress)
                })
                .await;
                (r, true)
            }
            (Object::Store(store), Object::Export(export)) => {
                crate::daemon::log::info(&format!(
                    "transfer: export image {:?} to stream {} (namespace {ns})",
                    store.name, export.stream
                ));
                let stream = self.take(&ns, &export.stream)?;
                let r = blocking(move || {
                    transfer_archive::export(&d, &ns, &store, &export, stream, &progress)
                })
                .await;
                (r, false)
            }
            (Object::Store(from), Object::Store(to)) => {
                let r =
                    blocking(move || transfer_archive::tag(&d, &ns, &from, &to, &progress)).await;
                (r, false)
            }
            _ => {
                return Err(Status::unimplemented(format!(
                    "method Transfer not implemented for {} to {}",
                    src.type_url, dst.type_url
                )))
            }
        };
        if collect {
            if let Err(e) = self.d.gc.collect_now(&self.d).await {
                crate::daemon::log::warn(&format!("collection after a transfer: {e:#}"));
            }
        }
        result?;
        Ok(Response::new(()))
    }
}

/// containerd's wording for an object with a missing part.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    ErrorKind::InvalidArgument.err(msg.into())
}
