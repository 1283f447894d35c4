//! `ctr content list|get|delete|active|label|fetch` (and the rest of the group, listed).

use ocibox::ctl::cli::{Command, Flag};

use super::stubs::{not_built, stub};

pub const COMMAND: Command = Command {
    subcommands: &[
        ACTIVE,
        DELETE,
        stub("edit", "edit a blob and return a new digest"),
        FETCH,
        stub("fetch-object", "retrieve objects from a remote"),
        GET,
        stub("ingest", "accept content into the store"),
        LIST,
        stub("push-object", "push an object to a remote"),
        LABEL,
        stub("prune", "prunes content from the content store"),
    ],
    ..Command::new("content", "manage content")
};

const ACTIVE: Command = Command {
    args_usage: "[flags] [<regexp>]",
    description: "display the ongoing transfers",
    flags: &[
        Flag::duration("timeout, t", "total timeout for fetch").env("CONTAINERD_FETCH_TIMEOUT"),
        Flag::string("root", "path to content store root").default("/tmp/content"),
    ],
    action: Some(not_built),
    ..Command::new("active", "display active transfers")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[<digest>, ...]",
    description:
        "Delete one or more blobs permanently. Successfully deleted\n  blobs are printed to stdout.",
    action: Some(not_built),
    ..Command::new("delete", "permanently delete one or more blobs")
};

const FETCH: Command = Command {
    args_usage: "[flags] <remote> <object>",
    description: "Fetch an image into containerd.
  
This command ensures that containerd has all the necessary resources to build
an image's rootfs and convert the configuration to a runtime format supported
by containerd.

This command uses the same syntax, of remote and object, as 'ctr fetch-object'.
We may want to make this nicer, but agnostism is preferred for the moment.

Right now, the responsibility of the daemon and the cli aren't quite clear. Do
not use this implementation as a guide. The end goal should be having metadata,
content and snapshots ready for a direct use via the 'ctr run'.

Most of this is experimental and there are few leaps to make this work.",
    flags: crate::registry_flags![
        Flag::strings("label", "labels to attach to the image"),
        Flag::strings("platform", "Pull content from a specific platform"),
        Flag::bool("all-platforms", "pull content from all platforms"),
        Flag::bool("all-metadata", "Pull metadata for all platforms"),
        Flag::bool(
            "metadata-only",
            "Pull all metadata including manifests and configs"
        ),
    ],
    action: Some(not_built),
    ..Command::new("fetch", "fetch all content for an image into containerd")
};

const GET: Command = Command {
    args_usage: "[<digest>, ...]",
    description: "display the image object",
    action: Some(not_built),
    ..Command::new("get", "get the data for an object")
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags]",
    description: "list blobs in the content store",
    flags: &[Flag::bool("quiet, q", "print only the blob digest")],
    action: Some(not_built),
    ..Command::new("list", "list all blobs in the store")
};

const LABEL: Command = Command {
    args_usage: "<digest> [<label>=<value> ...]",
    description: "labels blobs in the content store",
    action: Some(not_built),
    ..Command::new("label", "add labels to content")
};
