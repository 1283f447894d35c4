//! `ctr containers list|info|delete|label` (create, checkpoint and restore listed).

use ocibox::ctl::cli::{Command, Flag};

use super::stubs::{not_built, stub};

pub const COMMAND: Command = Command {
    aliases: &["c", "container"],
    subcommands: &[
        super::run::CREATE,
        DELETE,
        INFO,
        LIST,
        LABEL,
        stub("checkpoint", "checkpoint a container"),
        stub("restore", "restore a container from checkpoint"),
    ],
    ..Command::new("containers", "manage containers")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[flags] CONTAINER [CONTAINER, ...]",
    flags: &[Flag::bool(
        "keep-snapshot",
        "do not clean up snapshot with container",
    )],
    action: Some(not_built),
    ..Command::new("delete", "delete one or more existing containers")
};

const INFO: Command = Command {
    args_usage: "CONTAINER",
    flags: &[Flag::bool("spec", "only display the spec")],
    action: Some(not_built),
    ..Command::new("info", "get info about a container")
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags] [<filter>, ...]",
    flags: &[Flag::bool("quiet, q", "print only the container id")],
    action: Some(not_built),
    ..Command::new("list", "list containers")
};

const LABEL: Command = Command {
    args_usage: "[flags] CONTAINER [<key>=<value>, ...]",
    description: "set and clear labels for a container",
    action: Some(not_built),
    ..Command::new("label", "set and clear labels for a container")
};
