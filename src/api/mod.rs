//! containerd's gRPC API: the v1 services containerd 1.6/1.7 serve (version, namespaces,
//! containers, content, images, leases, snapshots, diff, tasks, events, introspection,
//! transfer) as prost messages with tonic clients and servers, generated from the .proto
//! files the containerd-client crate ships (scripts/gen-api.sh; checked in, so a build needs
//! no protoc), and the transport both sides share: [`serve`] (HTTP/2 on a unix socket,
//! dispatch by path) for the daemon, [`channel`] (one HTTP/2 connection on a unix socket)
//! for the ctl.
//!
//! The module tree mirrors the proto packages: `containerd.services.tasks.v1` is
//! [`services::tasks::v1`], `containerd.types` is [`types`], `containerd.v1.types` (task
//! status) is [`v1_types`], `containerd.events` is [`events`].

#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::all,
    unused_qualifications
)]
#[path = "generated/mod.rs"]
mod generated;

pub use generated::containerd::v1::types as v1_types;
pub use generated::containerd::{events, services, types};
pub use generated::google;

pub mod channel;
pub mod namespace;
pub mod serve;
pub mod status;
pub mod typeurl;

/// containerd's default bounds on one gRPC message (`defaults.DefaultMaxRecvMsgSize` and
/// `DefaultMaxSendMsgSize`): 16 MiB.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
