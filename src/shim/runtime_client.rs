//! Calls a runc-compatible runtime binary: ocibox's own runtime applet by default (this
//! very executable, run as `runc` through argv[0], no PATH lookup), or the binary the
//! runtime options name (`binary_name`), e.g. Debian's `/usr/sbin/runc`.
//!
//! `start` and `delete` of ocibox's own runtime are library calls in this process instead
//! (each saves an exec of this binary, ~1.4 ms of a `ctr run --rm`): they fork nothing and
//! touch only the container's state directory, cgroups and exec fifo. Not when the
//! container has hooks (hook processes are children, and only the reaper may wait for
//! this subreaper's children) or the systemd driver is asked for: those go through the
//! applet, as does every other command (create and exec fork the container's processes).

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::options::RuntimeOptions;
use super::reaper::Reaper;
use crate::runtime::{ContainerId, State};

/// Error messages and outputs read back from the runtime are capped at this size.
const MAX_OUTPUT: u64 = 4 << 20;

/// Where the runtime keeps its state (below it, one directory per namespace) when the
/// options name no root.
pub const DEFAULT_ROOT: &str = "/run/containerd/ocibox";

/// One runtime binary with its global flags.
#[derive(Clone)]
pub struct Runtime {
    /// The binary; `None` is this executable's runtime applet.
    binary: Option<PathBuf>,
    /// This executable, resolved once at start (a replaced binary on disk does not matter).
    self_exe: PathBuf,
    root: PathBuf,
    systemd_cgroup: bool,
    /// `--log` file, read for the error message when a command fails.
    log: PathBuf,
    reaper: Arc<Reaper>,
}

/// Stdio for a runtime command whose stdio becomes the container process's stdio.
pub struct ProcessStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl ProcessStdio {
    pub fn null() -> ProcessStdio {
        ProcessStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

impl Runtime {
    pub fn new(
        opts: &RuntimeOptions,
        namespace: &str,
        bundle: &Path,
        reaper: Arc<Reaper>,
    ) -> Result<Runtime> {
        let self_exe = std::fs::read_link("/proc/self/exe")
            .context("resolve /proc/self/exe for the runtime")?;
        // As containerd's runc shim: the root (the options' or the default), then the
        // namespace, so two namespaces never share a runtime state directory.
        let root = Path::new(opts.root.as_deref().unwrap_or(DEFAULT_ROOT)).join(namespace);
        Ok(Runtime {
            binary: opts.binary_name.as_ref().map(PathBuf::from),
            self_exe,
            root,
            systemd_cgroup: opts.systemd_cgroup,
            log: bundle.join("log.json"),
            reaper,
        })
    }

    /// The name used in error messages.
    pub fn name(&self) -> String {
        match &self.binary {
            Some(b) => b.display().to_string(),
            None => "ocibox runtime".to_string(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = match &self.binary {
            Some(b) => Command::new(b),
            None => {
                let mut c = Command::new(&self.self_exe);
                c.arg0("runc");
                c
            }
        };
        cmd.arg("--root").arg(&self.root);
        cmd.arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd
    }

    /// `start`: lets a created container's init exec the user's process.
    pub fn start(&self, id: &str) -> Result<()> {
        match self.in_process(id) {
            Some(st) => crate::runtime::start::start_loaded(&self.root, &st)
                .map_err(|e| self.in_process_failure("start", e)),
            None => self.run("start", &["start", id]).map(|_| ()),
        }
    }

    /// `delete [--force]`: removes a stopped container (with `force`, any container).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        match self.in_process(id) {
            Some(st) => crate::runtime::delete::delete_loaded(&self.root, &st, force)
                .map_err(|e| self.in_process_failure("delete", e)),
            None if force => self.run("delete", &["delete", "--force", id]).map(|_| ()),
            None => self.run("delete", &["delete", id]).map(|_| ()),
        }
    }

    /// The container's state, loaded once, when a command on it may run in this process
    /// (see the module comment); `None` sends it to the runtime binary, which also reports
    /// what is wrong with an id or state it cannot read.
    fn in_process(&self, id: &str) -> Option<State> {
        if self.binary.is_some() || self.systemd_cgroup {
            return None;
        }
        let id = ContainerId::parse(id).ok()?;
        let st = State::load(&self.root, &id).ok()?;
        st.config.hooks().is_none().then_some(st)
    }

    /// An in-process failure worded as the applet's would be read back from its log.
    fn in_process_failure(&self, what: &str, e: anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!("{} {what} failed: {e:#}: exit status 1", self.name())
    }

    /// Runs a command with captured output; returns stdout. A failure carries the runtime's
    /// own message (from stderr or the json log).
    pub fn run(&self, what: &str, args: &[&str]) -> Result<Vec<u8>> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let log_start = file_len(&self.log);
        let mut child = self.reaper.spawn(&mut cmd)?;
        let pid = child.id() as i32;
        // Drain stderr in a small thread so neither pipe can fill up and block the runtime.
        let err_thread = child.stderr.take().and_then(|mut e| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut buf = Vec::new();
                    let _ = (&mut e).take(MAX_OUTPUT).read_to_end(&mut buf);
                    buf
                })
                .ok()
        });
        let mut out = Vec::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = (&mut o).take(MAX_OUTPUT).read_to_end(&mut out);
        }
        let stderr = err_thread.and_then(|t| t.join().ok()).unwrap_or_default();
        let code = self.reaper.wait(pid);
        if code != 0 {
            let msg = self.failure_message(log_start, &stderr);
            bail!("{} {what} failed: {msg}: exit status {code}", self.name());
        }
        Ok(out)
    }

    /// Runs a command whose stdio is handed on to the container process (create, exec).
    pub fn run_with_stdio(&self, what: &str, args: &[&str], stdio: ProcessStdio) -> Result<()> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let log_start = file_len(&self.log);
        let child = self.reaper.spawn(&mut cmd)?;
        // Close our copies of the container's stdio ends now: the copiers see EOF only once
        // every writer is gone.
        drop(cmd);
        let code = self.reaper.wait(child.id() as i32);
        if code != 0 {
            let msg = self.failure_message(log_start, &[]);
            bail!("OCI runtime {what} failed: {msg}: exit status {code}");
        }
        Ok(())
    }

    /// The last error the runtime logged (runc logs `{"level":"error","msg":…}` lines),
    /// else its stderr, else "unknown".
    fn failure_message(&self, log_start: u64, stderr: &[u8]) -> String {
        if let Some(m) = last_logged_error(&self.log, log_start) {
            return m;
        }
        let s = String::from_utf8_lossy(stderr).trim().to_string();
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The last error line the runtime logged after byte `start` of its log.
fn last_logged_error(log: &Path, start: u64) -> Option<String> {
    use std::io::{Seek, SeekFrom};
    let mut text = String::new();
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    f.take(MAX_OUTPUT).read_to_string(&mut text).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("level")?.as_str()? == "error" {
            Some(v.get("msg")?.as_str()?.to_string())
        } else {
            None
        }
    })
}
