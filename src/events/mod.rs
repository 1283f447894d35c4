//! Events, the shared parts: [`topics`] (containerd's topic names) and [`envelope`] (task
//! events, their Any and Envelope). The shim's publisher uses them now; the daemon's Events
//! service and `ctr events` will.

pub mod envelope;
pub mod topics;

pub use envelope::{envelope, timestamp, Event};

/// The metadata key containerd reads the namespace from on ttrpc.
pub const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";
