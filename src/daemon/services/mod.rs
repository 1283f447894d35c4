//! One file per gRPC service of containerd's API; [`router`] serves them all.

use std::sync::Arc;

use crate::api::serve::Router;
use crate::daemon::context::Daemon;

pub mod content;
pub mod convert;
pub mod diff;
pub mod images;
pub mod layer_diff;
pub mod plumbing;
pub mod snapshots;
pub mod version;

/// Every service ociboxd serves, on one router.
pub fn router(d: &Arc<Daemon>) -> Router {
    Router::new()
        .service(version::server(d))
        .service(content::server(d))
        .service(images::server(d))
        .service(snapshots::server(d))
        .service(diff::server(d))
}
