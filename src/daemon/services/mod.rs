//! One file per gRPC service of containerd's API; [`router`] serves them all.

use std::sync::Arc;

use crate::api::serve::Router;
use crate::daemon::context::Daemon;

pub mod tasks;
pub mod version;

/// Every service ociboxd serves, on one router.
pub fn router(d: &Arc<Daemon>) -> Router {
    Router::new()
        .service(version::server(d))
        .service(tasks::server(d))
}
