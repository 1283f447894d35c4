//! `ctr images list|delete|tag|label|check` (and the rest of the group, listed).

use ocibox::ctl::cli::{Command, Flag};

use super::flags::SNAPSHOTTER;
use super::stubs::{not_built, stub};

pub const COMMAND: Command = Command {
    aliases: &["image", "i"],
    subcommands: &[
        CHECK,
        stub("export", "export images"),
        stub("import", "import images"),
        LIST,
        stub("mount", "mount an image to a target path"),
        stub("unmount", "unmount the image from the target"),
        super::pull::PULL,
        stub("push", "push an image to a remote"),
        DELETE,
        TAG,
        LABEL,
        stub("convert", "convert an image"),
    ],
    ..Command::new("images", "manage images")
};

const CHECK: Command = Command {
    args_usage: "[flags] [<filter>, ...]",
    description: "check existing images to ensure all content is available locally",
    flags: &[
        Flag::bool(
            "quiet, q",
            "print only the ready image refs (fully downloaded and unpacked)",
        ),
        SNAPSHOTTER,
    ],
    action: Some(not_built),
    ..Command::new(
        "check",
        "check existing images to ensure all content is available locally",
    )
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags] [<filter>, ...]",
    description: "list images registered with containerd",
    flags: &[Flag::bool("quiet, q", "print only the image refs")],
    action: Some(not_built),
    ..Command::new("list", "list images known to containerd")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[flags] <ref> [<ref>, ...]",
    description: "remove one or more images by reference",
    flags: &[Flag::bool(
        "sync",
        "Synchronously remove image and all associated resources",
    )],
    action: Some(not_built),
    ..Command::new("delete", "remove one or more images by reference")
};

const TAG: Command = Command {
    args_usage: "[flags] <source_ref> <target_ref> [<target_ref>, ...]",
    description: "Tag an image for use in containerd.",
    flags: &[Flag::bool(
        "force",
        "force target_ref to be created, regardless if it already exists",
    )],
    action: Some(not_built),
    ..Command::new("tag", "tag an image")
};

const LABEL: Command = Command {
    args_usage: "[flags] <name> [<key>=<value>, ...]",
    description: "set and clear labels for an image",
    flags: &[Flag::bool("replace-all, r", "replace all labels")],
    action: Some(not_built),
    ..Command::new("label", "set and clear labels for an image")
};
