//! `ctr shim --id X delete|exec|start|state`: a shim's task API over ttrpc.

use anyhow::{bail, Result};
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
    out(&connect(p)?.delete(p.first())?);
    Ok(())
}

fn start(p: &Parsed) -> Result<()> {
    connect(p)?.start(p.first())
}

/// ctr 1.6's `shim exec`: the exec id first, then the stdio fifos made (and their ends
/// held open, as ctr's prepareStdio does), the spec read, Exec and Start, the pid printed.
fn exec(p: &Parsed) -> Result<()> {
    let shim = connect(p)?;
    let exec_id = p.first().to_string();
    if exec_id.is_empty() {
        bail!("exec id must be provided");
    }
    let tty = p.bool("tty");
    let (stdin, stdout, stderr) = (p.string("stdin"), p.string("stdout"), p.string("stderr"));
    let _held = [
        open_fifo(&stdin, libc::O_WRONLY)?,
        open_fifo(&stdout, libc::O_RDONLY)?,
        if tty {
            None
        } else {
            open_fifo(&stderr, libc::O_RDONLY)?
        },
    ];
    let spec_path = p.string("spec");
    let spec = std::fs::read(&spec_path)
        .map_err(|e| anyhow::anyhow!("open {spec_path}: {}", super::archive::go_io(&e)))?;
    if p.bool("attach") {
        bail!("--attach: not supported by ocibox's ctr yet");
    }
    let pid = shim.exec(&exec_id, &spec, (&stdin, &stdout, &stderr), tty)?;
    out(&format!("exec running with pid {pid}\n"));
    Ok(())
}

/// The Go fifo package's `OpenFifo(path, mode|O_CREAT|O_NONBLOCK, 0700)`: made if missing
/// (its error words), then opened without blocking; a write end with no reader yet is
/// opened read-write instead, which never blocks (the Go package opens it later).
fn open_fifo(path: &str, mode: i32) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::path::Path::new(path).exists() {
        let made = nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o700));
        match made {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => bail!("error creating fifo {path}: {}", e.desc().to_lowercase()),
        }
    }
    let mut o = std::fs::OpenOptions::new();
    o.custom_flags(libc::O_NONBLOCK);
    if mode == libc::O_WRONLY {
        o.read(true).write(true);
    } else {
        o.read(true);
    }
    Ok(o.open(path).ok())
}
