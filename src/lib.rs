//! ocibox: the shared in-process modules of the multi-call binary.
//!
//! Nothing here parses command lines; the front ends in `applets/` do that and call in.

pub mod container;
pub mod features;
pub mod hooks;
pub mod init;
pub mod linux;
pub mod logging;
pub mod shim;
pub mod spec;

/// The version every applet reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The OCI runtime-spec version ocibox writes into default specs and state.
pub const OCI_VERSION: &str = "1.0.2-dev";
