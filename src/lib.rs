//! ocibox: the shared in-process modules of the multi-call binary.
//!
//! Nothing here parses command lines; the front ends in `applets/` do that and call in.

#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "images")]
pub mod archive;
#[cfg(feature = "images")]
pub mod content;
#[cfg(feature = "ctl")]
pub mod ctl;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod errdefs;
// ttrpc and events are shared parts, not shim internals; for now only the shim uses them.
// When the daemon lands (its shim client, its Events service) this becomes
// `#[cfg(any(feature = "shim", feature = "daemon"))]`.
#[cfg(feature = "shim")]
pub mod events;
#[cfg(feature = "images")]
pub mod image;
#[cfg(feature = "runtime")]
pub mod init;
pub mod linux;
pub mod logrus;
#[cfg(feature = "images")]
pub mod metadata;
pub mod oci;
#[cfg(feature = "images")]
pub mod pull;
#[cfg(feature = "images")]
pub mod registry;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod runtime_log;
#[cfg(feature = "shim")]
pub mod shim;
#[cfg(feature = "images")]
pub mod snapshot;
#[cfg(feature = "images")]
pub mod unpack;
// See `events` above: shared, shim-only for now.
pub mod timefmt;
#[cfg(feature = "shim")]
pub mod ttrpc;

/// The version every applet reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The OCI runtime-spec version ocibox writes into default specs and state.
pub const OCI_VERSION: &str = "1.0.2-dev";
