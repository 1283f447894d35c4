//! containerd.services.version.v1.Version: the daemon's version and revision (what
//! `ctr version` prints under "Server:").

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::services::version::v1::version_server::{Version, VersionServer};
use crate::api::services::version::v1::VersionResponse;
use crate::daemon::context::Daemon;

pub struct VersionService;

pub fn server(d: &Arc<Daemon>) -> VersionServer<VersionService> {
    super::limited!(VersionServer::new(VersionService), d)
}

#[tonic::async_trait]
impl Version for VersionService {
    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: crate::VERSION.to_string(),
            revision: option_env!("OCIBOX_REVISION")
                .unwrap_or("ocibox")
                .to_string(),
        }))
    }
}
