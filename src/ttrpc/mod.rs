//! ttrpc, the shared parts (the shim now; the daemon's shim client later): [`frames`] the
//! wire framing, [`method_relay`] answering unknown methods with UNIMPLEMENTED,
//! [`server`] the server setup, [`client`] the reconnecting client, [`status`] error kinds
//! as ttrpc codes.

pub mod client;
pub mod frames;
pub mod method_relay;
pub mod server;
pub mod status;
