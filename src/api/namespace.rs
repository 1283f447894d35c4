//! The `containerd-namespace` request header: every namespaced call carries it, as
//! containerd's Go client sends it (gRPC metadata), and a call without it fails as
//! containerd's does.

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// The metadata key containerd's clients and server use.
pub const HEADER: &str = "containerd-namespace";

/// The namespace a request names, or containerd's error when it names none
/// (`namespace is required: failed precondition`, as FailedPrecondition).
pub fn of<T>(req: &Request<T>) -> Result<String, Status> {
    let ns = req
        .metadata()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ns.is_empty() {
        return Err(Status::failed_precondition("namespace is required"));
    }
    Ok(ns.to_string())
}

/// Put `ns` on an outgoing request (the ctl's side).
pub fn set<T>(req: &mut Request<T>, ns: &str) -> Result<(), Status> {
    let v = MetadataValue::try_from(ns).map_err(|_| {
        Status::invalid_argument(format!("namespace {ns:?}: not a valid header value"))
    })?;
    req.metadata_mut().insert(HEADER, v);
    Ok(())
}
