//! `ctr shim --id X delete|exec|start|state`: a shim's task API over ttrpc.

use anyhow::{bail, Context, Result};
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::out;
use ocibox::ctl::shim_cmd::Shim;

pub const COMMAND: Command = Command {
    flags: &[Flag::string("id", "container id")],
    subcommands: &[DELETE, EXEC, START, STATE],
    ..Command::new("shim", "interact with a shim directly")
};

const DELETE: Command = Command {
    action: Some(delete),
    ..Command::new("delete", "delete a container with a task")
};

const EXEC: Command = Command {
    flags: &[
        Flag::string("stdin", "specify the path to the stdin fifo"),
        Flag::string("stdout", "specify the path to the stdout fifo"),
        Flag::string("stderr", "specify the path to the stderr fifo"),
        Flag::bool("tty, t", "enable tty support"),
        Flag::bool(
            "attach, a",
            "stay attached to the container and open the fifos",
        ),
        Flag::strings("env, e", "add environment vars"),
        Flag::string("cwd", "current working directory"),
        Flag::string("spec", "runtime spec"),
    ],
    action: Some(exec),
    ..Command::new("exec", "exec a new process in the task's container")
};

const START: Command = Command {
    action: Some(start),
    ..Command::new("start", "start a container with a task")
};

const STATE: Command = Command {
    action: Some(state),
    ..Command::new("state", "get the state of all the processes of the task")
};

fn connect(p: &Parsed) -> Result<Shim> {
    let id = p.string("id");
    if id.is_empty() {
        bail!("container id must be specified");
    }
    Shim::connect(&p.string("address"), &p.string("namespace"), &id)
}

fn state(p: &Parsed) -> Result<()> {
    out(&connect(p)?.state()?);
    Ok(())
}

fn delete(p: &Parsed) -> Result<()> {
    out(&connect(p)?.delete()?);
    Ok(())
}

fn start(p: &Parsed) -> Result<()> {
    connect(p)?.start()
}

fn exec(p: &Parsed) -> Result<()> {
    let shim = connect(p)?;
    let spec_path = p.string("spec");
    let spec = std::fs::read(&spec_path).with_context(|| format!("open {spec_path}"))?;
    if p.bool("attach") {
        bail!("--attach: not supported by ocibox's ctr yet");
    }
    // ctr's exec id for a shim exec is the first argument.
    let exec_id = p.first().to_string();
    shim.exec(
        &exec_id,
        &spec,
        (&p.string("stdin"), &p.string("stdout"), &p.string("stderr")),
        p.bool("tty"),
    )
}
