//! `run`: create + start, and unless detached, stay in the foreground with the container
//! (see [`super::foreground`]), then delete it and return its exit status.

use super::create::{create, CreateOptions};
use super::foreground::Foreground;
use super::start::start;
use super::stdio::RelayEnd;
use anyhow::Result;

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
    opts.create.foreground = true;
    let created = create(opts.create)?;
    let relay = created.relay_end.map(RelayEnd::start_relay).transpose()?;
    if let Err(e) = start(&root, &id) {
        let _ = super::delete::delete(&root, &id, true);
        return Err(e);
    }
    let code = fg.wait(created.state.pid, relay)?;
    if !opts.keep {
        super::delete::delete(&root, &id, true)?;
    }
    Ok(code)
}
