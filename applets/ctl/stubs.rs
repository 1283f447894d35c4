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
pub const RUN: Command = stub("run", "run a container");
pub const TASKS: Command = group(
    "tasks",
    &["t", "task"],
    "manage tasks",
    &[
        stub("attach", "attach to the IO of a running container"),
        stub("checkpoint", "checkpoint a container"),
        Command {
            aliases: &["del", "remove", "rm"],
            ..stub("delete", "delete one or more tasks")
        },
        stub(
            "exec",
            "execute additional processes in an existing container",
        ),
        Command {
            aliases: &["ls"],
            ..stub("list", "list tasks")
        },
        stub("kill", "signal a container (default: SIGTERM)"),
        stub("pause", "pause an existing container"),
        stub("ps", "list processes for container"),
        stub("resume", "resume a paused container"),
        stub("start", "start a container that has been created"),
        Command {
            aliases: &["metric"],
            ..stub(
                "metrics",
                "get a single data point of metrics for a task with the built-in Linux runtime",
            )
        },
    ],
);
pub const INSTALL: Command = stub("install", "install a new package");
pub const OCI: Command = group(
    "oci",
    &[],
    "OCI tools",
    &[stub("spec", "see the output of the default OCI spec")],
);
pub const SHIM: Command = Command {
    flags: &[Flag::string("id", "container id")],
    ..group(
        "shim",
        &[],
        "interact with a shim directly",
        &[
            stub("delete", "delete a container with a task"),
            stub("exec", "exec a new process in the task's container"),
            stub("start", "start a container with a task"),
            stub("state", "get the state of all the processes of the task"),
        ],
    )
};
