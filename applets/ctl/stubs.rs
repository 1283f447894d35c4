//! ctr's commands this build does not carry yet: listed in the help pages as ctr lists
//! them, failing honestly when run.

use ocibox::ctl::cli::{Command, Flag, Parsed};

/// The action of a command not built yet.
pub fn not_built(p: &Parsed) -> anyhow::Result<()> {
    anyhow::bail!("{}: not built in this version of ocibox", p.help_name)
}

pub const fn stub(name: &'static str, usage: &'static str) -> Command {
    Command {
        action: Some(not_built),
        ..Command::new(name, usage)
    }
}

const fn group(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    subs: &'static [Command],
) -> Command {
    Command {
        aliases,
        subcommands: subs,
        ..Command::new(name, usage)
    }
}

pub const PPROF: Command = Command {
    flags: &[Flag::string(
        "debug-socket, d",
        "socket path for containerd's debug server",
    )
    .default("/run/containerd/debug.sock")],
    ..group(
        "pprof",
        &[],
        "provide golang pprof outputs for containerd",
        &[
            stub("block", "goroutine blocking profile"),
            stub("goroutines", "dump goroutine stack dump"),
            stub("heap", "dump heap profile"),
            stub("profile", "CPU profile"),
            stub("threadcreate", "goroutine thread creating profile"),
            stub("trace", "collect execution trace"),
        ],
    )
};
pub const INSTALL: Command = stub("install", "install a new package");
pub const OCI: Command = group(
    "oci",
    &[],
    "OCI tools",
    &[stub("spec", "see the output of the default OCI spec")],
);
