//! `ctr events`: every event the daemon publishes, one line each, until interrupted.

use ocibox::ctl::cli::Command;

pub const COMMAND: Command = Command {
    aliases: &["event"],
    action: Some(super::stubs::not_built),
    ..Command::new("events", "display containerd events")
};
