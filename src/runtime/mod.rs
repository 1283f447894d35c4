//! A container: its state directory, its lifecycle operations (one file each), its status.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod id;
pub mod intent;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod rootless;
pub mod run;
pub mod seccomp_agent;
pub mod start;
pub mod state;
pub mod status;
pub mod stdio;
pub mod tty_relay;
pub mod update;

pub use id::ContainerId;
pub use state::State;
pub use status::Status;
