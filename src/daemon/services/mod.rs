//! One file per gRPC service of containerd's API; [`router`] serves them all.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::Status;

use crate::api::serve::Router;
use crate::api::status::to_status;
use crate::daemon::context::Daemon;
use crate::metadata::encoding::Labels;

pub mod containers;
pub mod content;
pub mod convert;
pub mod diff;
pub mod events;
pub mod images;
pub mod introspection;
pub mod layer_diff;
pub mod leases;
pub mod namespaces;
pub mod plumbing;
pub mod snapshots;
pub mod streaming;
pub mod tasks;
pub mod transfer;
pub mod transfer_archive;
pub mod transfer_pull;
pub mod transfer_snapshots;
pub mod transfer_unpack;
pub mod version;

/// Every service ociboxd serves, on one router. Introspection comes last: it lists the
/// gRPC services the router already carries as containerd's `io.containerd.grpc.v1` plugins.
pub fn router(d: &Arc<Daemon>) -> Router {
    let r = Router::new()
        .service(version::server(d))
        .service(namespaces::server(d))
        .service(containers::server(d))
        .service(leases::server(d))
        .service(events::server(d))
        .service(content::server(d))
        .service(images::server(d))
        .service(snapshots::server(d))
        .service(diff::server(d))
        .service(tasks::server(d));
    let streams = streaming::Streams::new();
    let r = r
        .service(streaming::server(d, &streams))
        .service(transfer::server(d, &streams));
    let mut served = r.names();
    served.push(introspection::SERVICE_NAME);
    r.service(introspection::server(d, &served))
}

/// Run store work off the runtime thread (redb, file IO) and map its error to containerd's
/// gRPC code and wording.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| to_status(&e)),
        Err(e) => Err(Status::internal(format!("store task failed: {e}"))),
    }
}

/// The API's label map as the stores keep it.
pub fn labels_in(m: HashMap<String, String>) -> Labels {
    m.into_iter().collect()
}

/// The stores' labels as the API's map.
pub fn labels_out(l: Labels) -> HashMap<String, String> {
    l.into_iter().collect()
}

/// A record time (unix ns) as a protobuf Timestamp.
pub fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// The paths of an update's field mask (none when absent).
pub fn mask_paths(m: Option<prost_types::FieldMask>) -> Vec<String> {
    m.map(|m| m.paths).unwrap_or_default()
}

/// A generated server with the configured message bounds (`[grpc] max_recv_message_size`,
/// `max_send_message_size`): a larger request is refused with ResourceExhausted before it
/// is decoded, as containerd's gRPC server does.
macro_rules! limited {
    ($srv:expr, $d:expr) => {
        $srv.max_decoding_message_size($d.config.max_recv_message_size)
            .max_encoding_message_size($d.config.max_send_message_size)
    };
}
pub(crate) use limited;
