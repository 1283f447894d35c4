//! `ps`: the processes of a container, as runc shows them: pids as JSON, or the host's
//! `ps` output filtered to the container's processes.

use super::id::ContainerId;
use super::state::State;
use super::status::Status;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The container's pids; none for a stopped container (runc 1.1 answers with the ps
/// header alone, or `null` in json, and exit 0).
pub fn pids(root: &Path, id: &ContainerId) -> Result<Vec<i32>> {
    let st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut pids = match &st.cgroup {
        Some(cg) => cg.pids()?,
        None => vec![st.pid],
    };
    pids.sort_unstable();
    Ok(pids)
}

/// Run the host's `ps` with `ps_args` (default `-ef`) and keep the header and the lines
/// of the container's processes.
pub fn table(pids: &[i32], ps_args: &[String]) -> Result<String> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("couldn't find PID field in ps output")?;
    let mut result = format!("{header}\n");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            result.push_str(line);
            result.push('\n');
        }
    }
    Ok(result)
}
