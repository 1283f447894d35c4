//! Launching a process through the runtime: `runtime create` for the init, `runtime exec
//! --detach` for an exec, with its stdio (pipes copied to containerd's FIFOs, or a pty
//! received over a console socket); the pid comes back through a pid file.

use std::path::Path;

use anyhow::{Context, Result};

use super::console_socket::ConsoleSocket;
use super::options::RuntimeOptions;
use super::process::Process;
use super::runtime_client::{ProcessStdio, Runtime};
use super::stdio::ProcessIo;

/// Pid files are read with this limit.
const MAX_PID_FILE: usize = 1 << 20;

/// Runs `runtime create` (init) or `runtime exec --detach` with the process's stdio;
/// returns the pid from the pid file.
#[allow(clippy::too_many_arguments)]
pub fn run_process(
    runtime: &Runtime,
    opts: &RuntimeOptions,
    bundle: &Path,
    pid_file: &Path,
    p: &Process,
    id: &str,
    init: bool,
) -> Result<u32> {
    let _ = std::fs::remove_file(pid_file);
    let bundle_s = bundle.to_string_lossy().into_owned();
    let pid_s = pid_file.to_string_lossy().into_owned();
    let spec_path = bundle.join(format!(".exec-{}.json", p.exec_id));
    let spec_s = spec_path.to_string_lossy().into_owned();
    let mut args: Vec<String> = if init {
        let mut a = vec![
            "create".into(),
            "--bundle".into(),
            bundle_s,
            "--pid-file".into(),
            pid_s,
        ];
        if opts.no_pivot_root {
            a.push("--no-pivot".into());
        }
        if opts.no_new_keyring {
            a.push("--no-new-keyring".into());
        }
        a
    } else {
        std::fs::write(&spec_path, p.spec.as_deref().unwrap_or_default())
            .with_context(|| format!("write exec process spec {}", spec_path.display()))?;
        vec![
            "exec".into(),
            "--process".into(),
            spec_s,
            "--detach".into(),
            "--pid-file".into(),
            pid_s,
        ]
    };
    let what = if init { "create" } else { "exec" };
    let result = if p.stdio.terminal {
        let console = ConsoleSocket::new()?;
        args.push("--console-socket".into());
        args.push(console.path.to_string_lossy().into_owned());
        args.push(id.to_string());
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        runtime
            .run_with_stdio(what, &argv, ProcessStdio::null())
            .and_then(|_| console.receive_master())
            .and_then(|master| ProcessIo::terminal(master, &p.stdio))
    } else {
        args.push(id.to_string());
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        ProcessIo::pipes(&p.stdio, (opts.io_uid, opts.io_gid))
            .and_then(|(stdio, io)| runtime.run_with_stdio(what, &argv, stdio).map(|_| io))
    };
    if !init {
        let _ = std::fs::remove_file(&spec_path);
    }
    let io = result?;
    p.set_io(io);
    read_pid_file(pid_file)
}

fn read_pid_file(path: &Path) -> Result<u32> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("read pid file {}", path.display()))?;
    if s.len() > MAX_PID_FILE {
        anyhow::bail!("pid file {} is too large", path.display());
    }
    s.trim()
        .parse()
        .with_context(|| format!("parse pid file {}", path.display()))
}
