//! ttrpc, the shared parts (the shim now; the daemon's shim client later): [`frames`] the
//! wire framing, [`server`] the poll-loop server with its limits, [`handler`] what a served
//! method is, [`worker_pool`] the bounded threads that run requests, [`client`] the
//! reconnecting client, [`status`] error kinds as ttrpc codes.

pub mod client;
pub mod frames;
pub mod handler;
pub mod server;
pub mod status;
pub mod worker_pool;
