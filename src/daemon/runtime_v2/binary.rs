//! Which shim runs a task, and how it is called: containerd 1.6's rule (runtime
//! `io.containerd.runc.v2` → binary `containerd-shim-runc-v2` on PATH, an absolute path as
//! is), its `start` command line (`-namespace -address -publish-binary -id … start`, cwd =
//! bundle, the options Any on stdin, `TTRPC_ADDRESS`/`GRPC_ADDRESS`/`NAMESPACE` in the
//! environment, stdout and stderr one pipe read to EOF) and its `delete` (`-bundle`, the
//! DeleteResponse protobuf on stdout).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message as _;
use prost::Message as _;

use crate::errdefs::{err, ErrorKind};

/// ocibox's own shim: its binary name, and the runtime that names it.
pub const OWN_SHIM: &str = "containerd-shim-ocibox-v2";
pub const OWN_RUNTIME: &str = "io.containerd.ocibox.v2";

/// Where containerd keeps the resolved binary in a bundle, for recovery.
pub const SHIM_BINARY_FILE: &str = "shim-binary-path";

/// A shim binary: its path and, for ocibox's own shim run from the daemon's binary, the
/// argv[0] that selects the shim applet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimBinary {
    pub path: PathBuf,
    pub arg0: Option<String>,
}

/// containerd's `BinaryName`: the last two dot-separated parts of the runtime name.
pub fn binary_name(runtime: &str) -> Option<String> {
    let parts: Vec<&str> = runtime.split('.').collect();
    if parts.len() < 2 || parts.iter().rev().take(2).any(|p| p.is_empty()) {
        return None;
    }
    Some(format!(
        "containerd-shim-{}-{}",
        parts[parts.len() - 2],
        parts[parts.len() - 1]
    ))
}

fn look_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn own_exe() -> Result<PathBuf> {
    std::fs::read_link("/proc/self/exe").context("resolve /proc/self/exe")
}

/// The shim binary for `runtime` (a runtime name or an absolute path): on PATH, else beside
/// the daemon's binary (containerd's "side by side"), else — for ocibox's own shim — the
/// daemon's own binary as the shim applet.
pub fn resolve(runtime: &str) -> Result<ShimBinary> {
    if runtime.is_empty() {
        bail!("no runtime name");
    }
    if Path::new(runtime).is_absolute() {
        std::fs::metadata(runtime)
            .with_context(|| format!("invalid custom binary path: stat {runtime}"))?;
        return Ok(ShimBinary {
            path: runtime.into(),
            arg0: None,
        });
    }
    let Some(name) = binary_name(runtime) else {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("invalid runtime name {runtime}, correct runtime name should be either format like `io.containerd.runc.v1` or a full path to the binary"),
        ));
    };
    if let Some(p) = look_path(&name) {
        return Ok(ShimBinary {
            path: p,
            arg0: None,
        });
    }
    let exe = own_exe()?;
    if let Some(beside) = exe.parent().map(|d| d.join(&name)) {
        if is_executable(&beside) {
            return Ok(ShimBinary {
                path: beside,
                arg0: None,
            });
        }
    }
    if name == OWN_SHIM {
        return Ok(ShimBinary {
            path: exe,
            arg0: Some(OWN_SHIM.into()),
        });
    }
    Err(err(
        ErrorKind::NotFound,
        format!("runtime {runtime:?} binary not installed {name:?}: file does not exist"),
    ))
}

impl ShimBinary {
    /// The binary a bundle's `shim-binary-path` names (the daemon's own binary is its shim
    /// applet again).
    pub fn from_saved(path: &str) -> ShimBinary {
        let path = PathBuf::from(path.trim());
        let arg0 = (own_exe().ok().as_ref() == Some(&path)
            && path.file_name().is_some_and(|n| n != OWN_SHIM))
        .then(|| OWN_SHIM.to_string());
        ShimBinary { path, arg0 }
    }
}

/// The daemon's side of one shim invocation.
pub struct ShimCall<'a> {
    pub binary: &'a ShimBinary,
    pub bundle: &'a Path,
    pub namespace: &'a str,
    pub id: &'a str,
    /// The daemon's gRPC socket (`-address`, `GRPC_ADDRESS`).
    pub address: &'a Path,
    /// Where shims publish (`TTRPC_ADDRESS`).
    pub ttrpc_address: &'a Path,
    /// What a shim runs to publish an event (`-publish-binary`).
    pub publish_binary: &'a Path,
    pub debug: bool,
}

/// How long a `start` or `delete` may print before it is cut off (a shim prints an address
/// or one small message).
const MAX_OUTPUT: u64 = 1 << 20;

impl ShimCall<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary.path);
        if let Some(a0) = &self.binary.arg0 {
            c.arg0(a0);
        }
        c.arg("-namespace")
            .arg(self.namespace)
            .arg("-address")
            .arg(self.address)
            .arg("-publish-binary")
            .arg(self.publish_binary)
            .args(args)
            .current_dir(self.bundle)
            .env("GOMAXPROCS", "2")
            .env("TTRPC_ADDRESS", self.ttrpc_address)
            .env("GRPC_ADDRESS", self.address)
            .env("NAMESPACE", self.namespace);
        c
    }

    /// Runs `start` with `opts` on stdin; the address the shim printed.
    pub fn start(&self, opts: Option<&prost_types::Any>) -> Result<String> {
        let mut args = vec!["-id", self.id];
        if self.debug {
            args.push("-debug");
        }
        args.push("start");
        let mut cmd = self.command(&args);
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("create the shim's output pipe")?;
        let mut reader = std::fs::File::from(reader);
        cmd.stdout(writer.try_clone().context("dup the shim's output pipe")?)
            .stderr(writer)
            .stdin(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("fork/exec {}", self.binary.path.display()))?;
        // The Command holds the pipe's write ends: dropped, EOF comes when the shim's
        // processes have closed theirs.
        drop(cmd);
        let input = opts.map(|a| a.encode_to_vec()).unwrap_or_default();
        let stdin = child.stdin.take();
        let feeder = std::thread::spawn(move || {
            if let Some(mut s) = stdin {
                let _ = s.write_all(&input);
            }
        });
        let mut out = Vec::new();
        let read = (&mut reader).take(MAX_OUTPUT).read_to_end(&mut out);
        let status = child.wait().context("wait for the shim's start")?;
        let _ = feeder.join();
        read.context("read the shim's output")?;
        let text = String::from_utf8_lossy(&out).trim().to_string();
        if !status.success() {
            bail!("{text}: {}", exit_text(status));
        }
        if text.is_empty() {
            bail!("shim printed no address");
        }
        Ok(text)
    }

    /// Runs `delete`: the shim cleans up what a dead shim left and says how it ended.
    pub fn delete(&self) -> Result<DeleteResponse> {
        let bundle: OsString = self.bundle.as_os_str().to_owned();
        let bundle = bundle.to_string_lossy().into_owned();
        let mut cmd = self.command(&["-id", self.id, "-bundle", &bundle, "delete"]);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("fork/exec {}", self.binary.path.display()))?;
        if !out.status.success() {
            bail!(
                "{}: {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                exit_text(out.status)
            );
        }
        DeleteResponse::parse_from_bytes(&out.stdout)
            .map_err(|e| anyhow!("decode the shim's DeleteResponse: {e}"))
    }
}

/// Go's `exec.ExitError` text.
fn exit_text(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {s}"),
        _ => "exited".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_map_to_shim_binaries() {
        assert_eq!(
            binary_name("io.containerd.runc.v2").as_deref(),
            Some("containerd-shim-runc-v2")
        );
        assert_eq!(binary_name(OWN_RUNTIME).as_deref(), Some(OWN_SHIM));
        assert_eq!(binary_name("runc"), None);
        assert_eq!(binary_name("io.containerd.runc."), None);
    }

    #[test]
    fn a_bad_runtime_name_is_invalid_argument() {
        let e = resolve("runc").unwrap_err();
        assert_eq!(crate::errdefs::kind_of(&e), ErrorKind::InvalidArgument);
        assert!(resolve("").is_err());
    }
}
