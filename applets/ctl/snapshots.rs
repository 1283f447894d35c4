//! `ctr snapshots list|tree|info|mounts|prepare|view|commit|delete|usage` (`--snapshotter`
//! on the group, as ctr has it).

use ocibox::ctl::cli::{Command, Flag};

use super::flags::SNAPSHOTTER;
use super::stubs::{not_built, stub};

pub const COMMAND: Command = Command {
    aliases: &["snapshot"],
    flags: &[SNAPSHOTTER],
    subcommands: &[
        COMMIT,
        stub(
            "diff",
            "get the diff of two snapshots. the default second snapshot is the first snapshot's parent.",
        ),
        INFO,
        LIST,
        MOUNTS,
        PREPARE,
        DELETE,
        stub("label", "add labels to content"),
        TREE,
        stub("unpack", "unpack applies layers from a manifest to a snapshot"),
        USAGE,
        VIEW,
    ],
    ..Command::new("snapshots", "manage snapshots")
};

const COMMIT: Command = Command {
    args_usage: "<key> <active>",
    action: Some(not_built),
    ..Command::new("commit", "commit an active snapshot into the provided name")
};

const INFO: Command = Command {
    args_usage: "<key>",
    action: Some(not_built),
    ..Command::new("info", "get info about a snapshot")
};

const LIST: Command = Command {
    aliases: &["ls"],
    action: Some(not_built),
    ..Command::new("list", "list snapshots")
};

const MOUNTS: Command = Command {
    aliases: &["m", "mount"],
    args_usage: "<target> <key>",
    action: Some(not_built),
    ..Command::new("mounts", "mount gets mount commands for the snapshots")
};

const TARGET_FLAGS: &[Flag] = &[
    Flag::string(
        "target, t",
        "mount target path, will print mount, if provided",
    ),
    Flag::bool("mounts", "Print out snapshot mounts as JSON"),
];

const PREPARE: Command = Command {
    args_usage: "[flags] <key> [<parent>]",
    flags: TARGET_FLAGS,
    action: Some(not_built),
    ..Command::new("prepare", "prepare a snapshot from a committed snapshot")
};

const VIEW: Command = Command {
    args_usage: "[flags] <key> [<parent>]",
    flags: TARGET_FLAGS,
    action: Some(not_built),
    ..Command::new(
        "view",
        "create a read-only snapshot from a committed snapshot",
    )
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "<key> [<key>, ...]",
    action: Some(not_built),
    ..Command::new("delete", "remove snapshots")
};

const TREE: Command = Command {
    action: Some(not_built),
    ..Command::new("tree", "display tree view of snapshot branches")
};

const USAGE: Command = Command {
    args_usage: "[flags] [<key>, ...]",
    flags: &[Flag::bool("b", "display size in bytes")],
    action: Some(not_built),
    ..Command::new("usage", "usage snapshots")
};
