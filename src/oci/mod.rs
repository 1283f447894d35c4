//! The OCI runtime-spec as ocibox reads and writes it: the bundle's `config.json`
//! ([`spec`]: load, validate, defaults) and the lifecycle hooks ([`hooks`]). Shared by the
//! runtime, the init, the shim and the ctl's spec builder.

pub mod hooks;
pub mod spec;
pub mod state;
