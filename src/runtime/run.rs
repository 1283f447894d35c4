//! `run`: create + start, and unless detached, stay in the foreground with the container
//! (see [`super::foreground`]), then delete it and return its exit status.

use super::create::{create, create_loaded, load_bundle, CreateOptions};
use super::foreground::Foreground;
use super::start::start;
use super::tty_relay::Relay;
use crate::linux::console;
use anyhow::{Context, Result};
use std::os::fd::{AsFd, OwnedFd};

pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    /// Keep the container's state after it exits (`--keep`).
    pub keep: bool,
}

/// Returns the exit code for the runtime: the container's (128+signal when killed).
pub fn run(mut opts: RunOptions) -> Result<i32> {
    let root = opts.create.root.clone();
    let id = opts.create.id.clone();
    if opts.detach {
        create(opts.create)?;
        start(&root, &id)?;
        return Ok(0);
    }
    let fg = Foreground::prepare()?;
    // The bundle is read once: its terminal setting decides the console socketpair.
    let loaded = load_bundle(&opts.create.bundle)?;
    let terminal = loaded.1.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let mut console_ours: Option<OwnedFd> = None;
    if terminal && opts.create.console_socket.is_none() {
        let (a, b) = std::os::unix::net::UnixStream::pair().context("console socketpair")?;
        opts.create.console_fd = Some(OwnedFd::from(b));
        console_ours = Some(OwnedFd::from(a));
    }
    let st = create_loaded(opts.create, loaded)?;
    let mut relay = None;
    if let Some(sock) = console_ours {
        let master = console::recv_console_fd(sock.as_fd())?;
        relay = Some(Relay::start(master)?);
    }
    if let Err(e) = start(&root, &id) {
        let _ = super::delete::delete(&root, &id, true);
        return Err(e);
    }
    let code = fg.wait(st.pid, relay)?;
    if !opts.keep {
        super::delete::delete(&root, &id, true)?;
    }
    Ok(code)
}
