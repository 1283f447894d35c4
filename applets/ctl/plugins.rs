//! `ctr plugins list`: the daemon's plugins (Introspection), as a table or `-d` detail.

use ocibox::ctl::cli::{Command, Flag};

pub const COMMAND: Command = Command {
    aliases: &["plugin"],
    subcommands: &[LIST],
    ..Command::new("plugins", "provides information about containerd plugins")
};

const LIST: Command = Command {
    aliases: &["ls"],
    flags: &[
        Flag::bool("quiet, q", "print only the plugin ids"),
        Flag::bool(
            "detailed, d",
            "print detailed information about each plugin",
        ),
    ],
    action: Some(super::stubs::not_built),
    ..Command::new("list", "lists containerd plugins")
};
