//! ociboxd: containerd's own gRPC API (the v1 services containerd 1.6/1.7 serve) on a unix
//! socket, over the image stack (content, metadata, snapshots) and shims driven by the
//! shim v2 protocol. See ../shared/design.md "daemon + ctl".
//!
//! - [`config`]: flags and the optional containerd-format TOML, embedded defaults.
//! - [`context`]: the [`context::Daemon`] every service shares (stores, paths, events).
//! - [`event_fields`]: the `event.*` fields subscription filters look into.
//! - [`events`]: the exchange services publish to and Events.Subscribe reads.
//! - [`gc`]: garbage collection scheduled after deletes.
//! - [`idle`]: the trim once no request has come for a moment.
//! - [`server`]: open the stores, bind the socket, serve until a signal.
//! - [`services`]: one file per gRPC service.
//! - [`log`]: containerd's (logrus text) log lines on stderr.
//! - [`runtime_v2`]: tasks in shims (the runtime v2 manager) and their recovery;
//!   [`events_ttrpc`] the endpoint shims publish to; [`publish`] `ociboxd publish`.

pub mod config;
pub mod context;
pub mod event_fields;
pub mod events;
pub mod events_ttrpc;
pub mod gc;
pub mod idle;
pub mod log;
pub mod publish;
pub mod runtime_v2;
pub mod server;
pub mod services;
pub mod snapshotters;
