//! A process's stdio as containerd hands it over: FIFO paths made by the client (or
//! `file://` log URIs), copied through pipes, or a terminal whose master the runtime sends
//! over the console socket.
//!
//! FIFOs: stdin is read through `O_RDONLY|O_NONBLOCK` while the shim holds a write end of
//! its own, so the copier sees EOF only after `CloseIO` (and the client's close);
//! stdout/stderr are written through `O_WRONLY` after opening a read end that is held for
//! the copier's life, so a slow or vanished client blocks output instead of losing it or
//! killing the container with SIGPIPE.
//!
//! The copying itself is done by the shim's one [`super::io_loop`] thread.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::{Gid, Uid};

use super::io_loop::{self, CopyDone};
use super::reaper::lock;
use super::runtime_client::ProcessStdio;

/// The stdio paths of a process, as in the request.
#[derive(Debug, Clone, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The live side of a process's stdio in the shim.
#[derive(Default)]
pub struct ProcessIo {
    /// The shim's own write end of the stdin FIFO; dropping it lets stdin reach EOF.
    stdin_closer: Mutex<Option<File>>,
    /// The pty master, for resizes.
    console: Option<File>,
    /// Output copies; waited for before the exit is reported so no output is lost.
    copiers: Mutex<Vec<CopyDone>>,
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("create stdio pipe")?;
    Ok((File::from(r), File::from(w)))
}

fn spawn_copier(
    name: &str,
    from: File,
    to: File,
    after: impl FnOnce() + Send + 'static,
) -> Result<CopyDone> {
    io_loop::copy(from, to, after).with_context(|| format!("copy {name}"))
}

fn set_blocking(f: &File) -> Result<()> {
    crate::linux::fds::set_nonblocking(std::os::fd::AsFd::as_fd(f), false)
        .context("set fifo blocking")
}

/// Opens a stdin FIFO: the reader the copier uses and the shim's own writer.
fn open_stdin_fifo(path: &str) -> Result<(File, File)> {
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open stdin fifo {path}"))?;
    let writer = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open stdin fifo {path} for writing"))?;
    set_blocking(&reader)?;
    Ok((reader, writer))
}

/// Opens an output FIFO for writing, holding a read end so the open cannot block and a
/// writer never gets EPIPE.
fn open_output_fifo(path: &str) -> Result<(File, File)> {
    let held = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open output fifo {path}"))?;
    let w = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open output fifo {path} for writing"))?;
    Ok((w, held))
}

/// An output destination: a `file://` path opened for appending, else a FIFO path.
enum Output {
    File(File),
    Fifo(String),
    Null,
}

fn output(path: &str) -> Result<Output> {
    if path.is_empty() {
        return Ok(Output::Null);
    }
    if let Some(p) = path.strip_prefix("file://") {
        if let Some(dir) = std::path::Path::new(p).parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create log directory {}", dir.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .with_context(|| format!("open log file {p}"))?;
        return Ok(Output::File(f));
    }
    if path.starts_with("binary://") {
        bail!("binary:// log URIs are not supported yet: {path}");
    }
    Ok(Output::Fifo(
        path.strip_prefix("fifo://").unwrap_or(path).to_string(),
    ))
}

impl ProcessIo {
    /// Sets up piped (non-terminal) stdio: the stdio for the runtime command that starts the
    /// process, and the shim's side.
    /// `owner` (the runtime options' IoUid/IoGid) owns the pipes, as go-runc's
    /// `NewPipeIO(uid, gid)` makes them, so a remapped process can reopen them.
    pub fn pipes(
        paths: &StdioPaths,
        owner: (Option<u32>, Option<u32>),
    ) -> Result<(ProcessStdio, ProcessIo)> {
        let pipe = || -> Result<(File, File)> {
            let (r, w) = pipe()?;
            if owner != (None, None) {
                let (uid, gid) = (owner.0.map(Uid::from_raw), owner.1.map(Gid::from_raw));
                for end in [r.as_fd(), w.as_fd()] {
                    nix::unistd::fchown(end.as_raw_fd(), uid, gid)
                        .context("chown stdio pipe to the io uid/gid")?;
                }
            }
            Ok((r, w))
        };
        let io = ProcessIo::default();
        let mut stdio = ProcessStdio::null();
        if !paths.stdin.is_empty() {
            let (fifo_r, closer) = open_stdin_fifo(&paths.stdin)?;
            let (r, w) = pipe()?;
            stdio.stdin = Stdio::from(OwnedFd::from(r));
            // The stdin copier is not joined: it ends with CloseIO or the client.
            spawn_copier("stdin", fifo_r, w, || {})?;
            *lock(&io.stdin_closer) = Some(closer);
        }
        let mut copiers = Vec::new();
        for (i, path) in [&paths.stdout, &paths.stderr].into_iter().enumerate() {
            let target = match output(path)? {
                Output::Null => continue,
                Output::File(f) => {
                    let s = Stdio::from(OwnedFd::from(f));
                    if i == 0 {
                        stdio.stdout = s;
                    } else {
                        stdio.stderr = s;
                    }
                    continue;
                }
                Output::Fifo(p) => p,
            };
            let (fifo_w, held) = open_output_fifo(&target)?;
            let (r, w) = pipe()?;
            let s = Stdio::from(OwnedFd::from(w));
            if i == 0 {
                stdio.stdout = s;
            } else {
                stdio.stderr = s;
            }
            copiers.push(spawn_copier("output", r, fifo_w, move || drop(held))?);
        }
        *lock(&io.copiers) = copiers;
        Ok((stdio, io))
    }

    /// Wires a terminal: stdin FIFO → master, master → stdout FIFO.
    pub fn terminal(master: File, paths: &StdioPaths) -> Result<ProcessIo> {
        let mut io = ProcessIo::default();
        if !paths.stdin.is_empty() {
            let (fifo_r, closer) = open_stdin_fifo(&paths.stdin)?;
            let to = master.try_clone().context("dup pty master")?;
            spawn_copier("stdin", fifo_r, to, || {})?;
            *lock(&io.stdin_closer) = Some(closer);
        }
        let mut copiers = Vec::new();
        match output(&paths.stdout)? {
            Output::Null => {}
            Output::File(f) => {
                let from = master.try_clone().context("dup pty master")?;
                copiers.push(spawn_copier("output", from, f, || {})?);
            }
            Output::Fifo(p) => {
                let (fifo_w, held) = open_output_fifo(&p)?;
                let from = master.try_clone().context("dup pty master")?;
                copiers.push(spawn_copier("output", from, fifo_w, move || drop(held))?);
            }
        }
        *lock(&io.copiers) = copiers;
        io.console = Some(master);
        Ok(io)
    }

    /// Closes the shim's stdin writer (CloseIO).
    pub fn close_stdin(&self) {
        lock(&self.stdin_closer).take();
    }

    /// Sets the terminal size (ResizePty).
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(c) = &self.console else {
            bail!("process has no terminal");
        };
        let rows = height.min(u16::MAX as u32) as u16;
        let cols = width.min(u16::MAX as u32) as u16;
        crate::linux::console::set_window_size(std::os::fd::AsFd::as_fd(c), rows, cols)
            .context("set terminal size")?;
        Ok(())
    }

    /// Waits until all output has been copied (the process and everything holding its
    /// stdout/stderr have exited), at most `limit`: a daemonized child holding the pipe
    /// must not hold back the exit. The copiers go on copying after that.
    pub fn wait_output(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        let mut copiers = lock(&self.copiers);
        for c in copiers.iter() {
            if !c.wait_until(deadline) {
                break;
            }
        }
        copiers.retain(|c| !c.is_finished());
    }
}
